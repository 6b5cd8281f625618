from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from app.core.settings import Settings
from tests.jobs.conftest import _clean_queue, fast, worker  # noqa: F401 - fixtures
from tests.notifications.receiver import Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    running = Receiver()
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
def loopback_allowed(app: Any, settings: Settings) -> Iterator[None]:
    """Registration accepts loopback URLs (the receiver) like a development setup."""
    app.state.settings = fast(settings)
    yield
    app.state.settings = settings
