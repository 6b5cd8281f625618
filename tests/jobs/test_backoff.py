"""A background step that keeps failing backs off, and an outage is a warning line, not
a traceback per round."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.core.settings import Settings
from app.jobs import worker as worker_module
from app.jobs.worker import MAX_BACKOFF_SECONDS, Worker, _backoff


def test_the_pause_doubles_per_failure_up_to_a_cap() -> None:
    assert _backoff(2.0, 0) == 2.0
    assert _backoff(2.0, 1) == 4.0
    assert _backoff(2.0, 2) == 8.0
    assert _backoff(2.0, 50) == MAX_BACKOFF_SECONDS
    # A step that runs every 0.05 s still pauses for a noticeable time once it fails.
    assert _backoff(0.05, 1) == 1.0
    # A step with a longer interval than the cap is never run more often than usual.
    assert _backoff(3600.0, 3) == 3600.0


async def test_an_outage_is_logged_as_a_warning_and_the_loop_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = Worker(async_sessionmaker(), Settings(), database_url="postgresql://nowhere/db")
    pauses: list[float] = []
    rounds = 0

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 3:
            w.stopping.set()

    async def step() -> bool:
        nonlocal rounds
        rounds += 1
        if rounds <= 2:
            raise ConnectionRefusedError(111, "Connect call failed")
        raise ValueError("a bug")

    events: list[tuple[str, str]] = []

    class Recorder:
        def warning(self, event: str, **_: Any) -> None:
            events.append((event, "warning"))

        def exception(self, event: str, **_: Any) -> None:
            events.append((event, "error"))

    monkeypatch.setattr(w, "_sleep", sleep)
    monkeypatch.setattr(worker_module, "log", Recorder())
    await asyncio.wait_for(w._every(1.0, step), timeout=5)
    assert events == [
        ("database unavailable", "warning"),
        ("database unavailable", "warning"),
        ("background step failed", "error"),
    ]
    assert pauses == [2.0, 4.0, 8.0]
