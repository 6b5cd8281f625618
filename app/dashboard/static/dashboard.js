// Small conveniences; every page works without them.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Filters apply as soon as a choice is made.
  document.querySelectorAll("select.auto, input.auto[type=checkbox]").forEach(function (field) {
    field.addEventListener("change", function () {
      if (field.form) field.form.requestSubmit ? field.form.requestSubmit() : field.form.submit();
    });
  });
  // The sign-in key never lingers in the field after leaving the page.
  var key = document.getElementById("api_key");
  if (key) window.addEventListener("pagehide", function () { key.value = ""; });
});
