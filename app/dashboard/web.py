"""Rendering: the Jinja2 environment (autoescaped), number formats and security headers."""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined

from app.dashboard.i18n import Translator, choose_language
from app.policies.schemas import STAGES, TIERS

LANG_COOKIE = "stratum_lang"
LANG_COOKIE_SECONDS = 365 * 86400

# No inline script or style anywhere: scripts, styles and images come from this service.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _read_static(name: str) -> bytes:
    return resources.files("app.dashboard").joinpath("static", name).read_bytes()


STATIC_TYPES = {
    "dashboard.css": "text/css",
    "dashboard.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}
STATIC = {name: _read_static(name) for name in STATIC_TYPES}
# Asset URLs carry a content hash, so a new release is never served from a stale cache.
STATIC_VERSION = hashlib.sha256(b"".join(STATIC.values())).hexdigest()[:12]


def number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def money(value: Any) -> str:
    if value is None:
        return "—"
    return f"{Decimal(value):,.2f}"


def percent(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:.0f}%"


def moment(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def instant(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def day(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d")


_environment = Environment(
    loader=PackageLoader("app.dashboard", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters.update(
    number=number, money=money, percent=percent, moment=moment, instant=instant, day=day
)
_environment.globals.update(static_version=STATIC_VERSION, tiers=TIERS, stages=STAGES)


def page_language(request: Request) -> str:
    return choose_language(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
    )


def url_with(request: Request, path: str | None = None, /, **changes: Any) -> str:
    """This page's URL (or `path`) with some query parameters replaced (None drops one)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    return (path or request.url.path) + (f"?{query}" if query else "")


def secure(response: Response, request: Request) -> Response:
    response.headers.update(SECURITY_HEADERS)
    chosen = request.query_params.get("lang")
    if chosen and chosen == page_language(request):
        response.set_cookie(
            LANG_COOKIE,
            chosen,
            max_age=LANG_COOKIE_SECONDS,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/dashboard",
        )
    return response


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    lang = page_language(request)
    t = Translator(lang)
    other = "en" if lang == "zh-CN" else "zh-CN"
    html = _environment.get_template(template).render(
        t=t,
        lang=lang,
        path=request.url.path,
        switch_url=url_with(request, lang=other),
        url_with=lambda path=None, **changes: url_with(request, path, **changes),
        query=request.query_params,
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    secure(response, request)
    return response


def redirect(request: Request, location: str) -> Response:
    return secure(RedirectResponse(location, status_code=303), request)
