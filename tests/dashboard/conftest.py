from collections.abc import Iterator

import pytest

from app.dashboard import cache, flows


@pytest.fixture(autouse=True)
def fresh_figures() -> Iterator[None]:
    """Each test starts on its own data (tables are truncated between tests), so figures
    kept by an earlier test's views must not be shown while new ones are computed."""
    cache.forget()
    flows.forget()
    yield
    cache.forget()
    flows.forget()
