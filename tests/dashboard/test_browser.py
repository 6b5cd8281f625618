"""The dashboard in a real browser: headless Chromium against a running service."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.settings import Settings
from app.main import create_app
from tests.dashboard.support import bearer_key, seed

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def service(settings: Settings, database_url: str) -> Iterator[str]:
    """The service on a free loopback port, in a thread with its own event loop."""
    port = _free_port()
    app = create_app(settings, database_url=database_url)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the service did not start")
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def driver() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--lang=en-US",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


def _screenshots(tmp_path: Path) -> Path:
    # STRATUM_SCREENSHOTS keeps them somewhere lasting (the README's picture comes from here).
    kept = os.environ.get("STRATUM_SCREENSHOTS")
    target = Path(kept) if kept else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    return target


def _no_console_errors(driver: object) -> None:
    entries = driver.get_log("browser")  # type: ignore[attr-defined]
    errors = [e["message"] for e in entries if e["level"] == "SEVERE"]
    # A CSP violation or a script error would show up here.
    assert not errors, errors


async def test_a_person_signs_in_and_walks_through_every_page(
    service: str,
    driver: object,
    client: httpx.AsyncClient,
    writer: dict[str, str],
    session: AsyncSession,
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d = driver  # type: ignore[assignment]

    def arrive(ending: str) -> None:
        # A click that submits or follows a link returns before the next page is there.
        WebDriverWait(d, 20).until(lambda b: b.current_url.split("?")[0].endswith(ending))

    shots = _screenshots(tmp_path)
    await seed(client, writer, session)
    api = (await client.get("/v1/segments/overview", headers=writer)).json()

    def run() -> None:
        d.get(f"{service}/dashboard")
        assert d.current_url == f"{service}/dashboard/sign-in"
        d.find_element(By.NAME, "api_key").send_keys(bearer_key(writer))
        d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        arrive("/dashboard")
        assert d.current_url == f"{service}/dashboard"
        assert bearer_key(writer) not in d.current_url

        cells = d.find_elements(By.CSS_SELECTOR, "#matrix td[data-tier]")
        shown = {
            (c.get_attribute("data-tier"), c.get_attribute("data-stage")): (
                int(c.get_attribute("data-customers")),
                c.get_attribute("data-revenue"),
            )
            for c in cells
        }
        expected = {(c["tier"], c["stage"]): (c["customers"], c["revenue"]) for c in api["cells"]}
        assert {k: v for k, v in shown.items() if v[0]} == expected
        totals = d.find_element(By.ID, "totals")
        assert int(totals.get_attribute("data-classified")) == api["classified"]
        assert totals.get_attribute("data-revenue") == api["revenue"]
        d.save_screenshot(str(shots / "overview.png"))
        _no_console_errors(d)

        for name, path, marker in (
            ("movements", "/dashboard/movements?days=90&first=true", "movement-list"),
            ("segments", "/dashboard/segments", "cells"),
            ("today", "/dashboard/today", "strategy-"),
        ):
            d.get(f"{service}{path}")
            assert marker in d.page_source, name
            d.save_screenshot(str(shots / f"{name}.png"))
            _no_console_errors(d)

        # A cell to its members, a member to the customer page.
        d.get(f"{service}/dashboard")
        biggest = max(api["cells"], key=lambda c: c["customers"])
        d.find_element(
            By.CSS_SELECTOR,
            f'#matrix td[data-tier="{biggest["tier"]}"][data-stage="{biggest["stage"]}"] a',
        ).click()
        arrive(f"/dashboard/segments/{biggest['tier']}.{biggest['stage']}")
        assert d.current_url.endswith(f"/dashboard/segments/{biggest['tier']}.{biggest['stage']}")
        members = d.find_elements(By.CSS_SELECTOR, "#members a.member")
        assert len(members) == biggest["customers"]
        d.save_screenshot(str(shots / "segment.png"))
        target = members[0].get_attribute("href")
        members[0].click()
        arrive(target.split("/dashboard", 1)[1])
        assert "/dashboard/customers/" in d.current_url
        assert d.find_element(By.ID, "tier").text
        assert d.find_elements(By.CSS_SELECTOR, "ul.reasons li")
        d.save_screenshot(str(shots / "customer.png"))
        _no_console_errors(d)

        # Switch to Chinese; the choice sticks on the next page.
        d.find_element(By.ID, "lang-switch").click()
        WebDriverWait(d, 20).until(lambda b: "服务策略" in b.page_source)
        d.get(f"{service}/dashboard")
        assert "概览" in d.page_source
        d.save_screenshot(str(shots / "overview-zh.png"))

        # A phone-sized window still shows the matrix.
        d.set_window_size(390, 844)
        d.get(f"{service}/dashboard?lang=en")
        assert d.find_element(By.ID, "matrix").is_displayed()
        d.save_screenshot(str(shots / "overview-phone.png"))
        # Every page fits the phone's width: wide tables scroll inside their card, the
        # page itself never scrolls sideways.
        for name, path in (
            ("overview", "/dashboard"),
            ("movements", "/dashboard/movements?days=90&first=true"),
            ("segments", "/dashboard/segments"),
            ("segment", f"/dashboard/segments/{biggest['tier']}.{biggest['stage']}"),
            ("customer", target.split(service, 1)[-1]),
            ("today", "/dashboard/today"),
        ):
            d.get(f"{service}{path}")
            overflow = d.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, (name, overflow)
            d.save_screenshot(str(shots / f"{name}-phone.png"))
        d.set_window_size(1280, 900)

        # Signing out leads back to the form.
        d.find_element(By.CSS_SELECTOR, "form[action='/dashboard/sign-out'] button").click()
        arrive("/dashboard/sign-in")
        d.get(f"{service}/dashboard")
        assert d.current_url == f"{service}/dashboard/sign-in"

    await asyncio.to_thread(run)
    for name in ("overview", "movements", "segments", "today", "segment", "customer"):
        assert (shots / f"{name}.png").stat().st_size > 5000
