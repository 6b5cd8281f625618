"""Stored population fits carry the engine's model version: another version's fit is
refitted and replaced, never reused and never a crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.classification import service as classification_service
from app.classification.engine.model import FORMAT
from tests.classification.test_endpoints import _classify, _iso, _seed

T = datetime(2026, 6, 1, tzinfo=UTC)


async def _stored(session: AsyncSession) -> list[dict[str, object]]:
    rows = (await session.execute(text("SELECT model::text FROM population_fits"))).all()
    await session.commit()
    return [json.loads(r[0]) for r in rows]


async def test_a_fit_of_another_engine_version_is_refitted(
    client: httpx.AsyncClient,
    reader: dict[str, str],
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Stored fits are looked up on every request here, not once a second.
    monkeypatch.setattr(classification_service, "MODEL_TTL", 0.0)
    await _seed(session, "c-1", [(40, "10"), (20, "10")])
    first = await _classify(client, reader, "c-1", as_of=_iso(T))
    assert first.status_code == 200
    model = first.json()["model"]
    assert model["version"] == FORMAT and model["name"] in ("prior", "bgnbd")
    (stored,) = await _stored(session)
    assert stored["format"] == FORMAT

    # What an older engine left behind for the same key: another version, another shape.
    old = {"format": FORMAT - 1, "source": "fitted", "bgnbd": [1, 2, 3, 4]}
    await session.execute(
        text("UPDATE population_fits SET model = CAST(:m AS jsonb), created_at = now()"),
        {"m": json.dumps(old)},
    )
    await session.commit()
    again = await _classify(client, reader, "c-1", as_of=_iso(T))
    assert again.status_code == 200
    assert again.content == first.content
    (refitted,) = await _stored(session)
    assert refitted["format"] == FORMAT


async def test_garbage_in_a_stored_fit_is_refitted(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession
) -> None:
    await _seed(session, "c-1", [(40, "10"), (20, "10")])
    first = await _classify(client, reader, "c-1", as_of=_iso(T))
    await session.execute(
        text("UPDATE population_fits SET model = '[1, 2]'::jsonb, created_at = now()")
    )
    await session.commit()
    again = await _classify(client, reader, "c-1", as_of=_iso(T))
    assert again.status_code == 200 and again.content == first.content


async def test_the_first_call_of_a_fresh_installation_can_be_a_batch_classification(
    client: httpx.AsyncClient, reader: dict[str, str], session: AsyncSession
) -> None:
    # No policy stored yet: the default one is written on first use, by the request's
    # read session, whose statements commit one by one; the fit the request starts in
    # a session of its own sees it rather than waiting on the request for it.
    assert (await session.execute(text("SELECT count(*) FROM policies"))).scalar_one() == 0
    await session.commit()
    await _seed(session, "c-1", [(40, "10"), (20, "10")])
    response = await client.post(
        "/v1/classifications/batch",
        json={"customer_ids": ["c-1"], "as_of": _iso(T)},
        headers=reader,
    )
    assert response.status_code == 200, response.text
    assert response.json()["items"][0]["policy_version"] == 1


async def test_a_fit_does_not_keep_the_default_policy_locked_while_it_runs(
    app: Any, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A background caller (the warm-up, re-classification) that writes the default
    # policy and then fits: while the fit runs, every other session already sees the
    # policy, instead of waiting on the caller's transaction for it.
    from app.classification import population
    from app.classification.service import engine_policy
    from app.policies.service import current_policy

    await _seed(session, "c-1", [(40, "10"), (20, "10")])
    seen: list[int] = []
    real = population.fit

    async def watched(*args: Any, **kwargs: Any) -> Any:
        async with app.state.engine.connect() as other:
            seen.append((await other.execute(text("SELECT count(*) FROM policies"))).scalar_one())
        return await real(*args, **kwargs)

    monkeypatch.setattr(population, "fit", watched)
    monkeypatch.setattr(population, "_cache", {})
    async with app.state.sessionmaker() as caller:
        active = await current_policy(caller)
        await population.model_for(
            caller,
            version=active.version,
            policy=engine_policy(active),
            as_of=T,
            horizon_days=active.document.horizon_days,
        )
    assert seen == [1]
