from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys import service as apikeys
from app.classification import service as classification
from app.core.migrate import upgrade
from app.core.settings import Settings
from app.main import create_app
from app.models import Base
from app.policies import service as policies
from tests.support.database import test_database

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with test_database() as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        log_level="WARNING",
        log_json=False,
        webhook_secret=WEBHOOK_SECRET,  # type: ignore[arg-type]
        max_body_bytes=2 * 1024 * 1024,
        warm_models=False,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings, database_url: str) -> AsyncIterator[object]:
    application = create_app(settings, database_url=database_url)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://stratum.test") as c:
        yield c


@pytest.fixture
async def session(app: object) -> AsyncIterator[AsyncSession]:
    async with app.state.sessionmaker() as s:  # type: ignore[attr-defined]
        yield s


_TABLES = ", ".join(t.name for t in Base.metadata.sorted_tables)


@pytest.fixture(autouse=True)
async def _clean(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Each test starts from empty tables.

    Tests run the service's real transactions (concurrency and idempotency need
    separate connections), so isolation is a TRUNCATE, not a rolled-back transaction.
    """
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    async with app.state.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE"))
    app.state.key_cache.clear()
    policies.forget()
    classification.forget()


async def _key(session: AsyncSession, scopes: list[str]) -> dict[str, str]:
    _, key = await apikeys.create(session, name="test " + ",".join(scopes), scopes=scopes)
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def admin(session: AsyncSession) -> dict[str, str]:
    return await _key(session, ["read", "write", "admin"])


@pytest.fixture
async def reader(session: AsyncSession) -> dict[str, str]:
    return await _key(session, ["read"])


@pytest.fixture
async def writer(session: AsyncSession) -> dict[str, str]:
    return await _key(session, ["read", "write"])
