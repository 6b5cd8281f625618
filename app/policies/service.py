"""The policy in force: read it (cached per version), replace it (a new version)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import after_commit
from app.core.problems import Invalid, field_error
from app.policies import repository
from app.policies.default import default_document
from app.policies.schemas import PolicyDocument, PolicyRead


@dataclass(frozen=True, slots=True)
class ActivePolicy:
    version: int
    document: PolicyDocument
    created_at: datetime


# Versions never change once written, so a parsed version can be kept for good.
_parsed: dict[int, ActivePolicy] = {}
# Which version is newest is asked again after this long: the hot path skips a query,
# and another process's PUT is seen within the second.
LATEST_TTL = 1.0
_latest: tuple[float, int] | None = None


def forget() -> None:
    """Drop what this process remembers (after a PUT here, or when tables are emptied)."""
    global _latest
    _latest = None
    _parsed.clear()


async def current_policy(session: AsyncSession) -> ActivePolicy:
    """The newest policy version; the default one is written on first use."""
    global _latest
    if _latest is not None and _latest[0] > time.monotonic():
        return await policy_version(session, version=_latest[1])
    version = await repository.latest_version(session)
    if version is not None:
        _latest = (time.monotonic() + LATEST_TTL, version)
    if version is None:
        await repository.insert_first(session, document=default_document())
        version = 1
    return await policy_version(session, version=version)


async def policy_for_ingest(session: AsyncSession) -> ActivePolicy:
    """The policy in force for converting amounts, held until the transaction ends.

    Takes the shared policy lock, then asks for the newest version afresh (no cache: a
    version another process made a moment ago must be used, or its re-basing missed).
    """
    version = await repository.lock_shared_latest(session)
    return await in_force(session, version=version)


async def lock_for_ingest(session: AsyncSession) -> None:
    """The shared policy lock alone, for a caller that reads the newest version in a
    statement of its own after this one (then `in_force`)."""
    await repository.lock_shared_raw(session)


async def in_force(session: AsyncSession, *, version: int | None) -> ActivePolicy:
    """The policy of `version`, the newest one read under the shared lock; with none
    stored yet, the default one is written."""
    if version is None:
        await repository.insert_first(session, document=default_document())
        version = 1
    return await policy_version(session, version=version)


async def policy_version(session: AsyncSession, *, version: int) -> ActivePolicy:
    cached = _parsed.get(version)
    if cached is not None:
        return cached
    row = await repository.get(session, version=version)
    if row is None:
        raise LookupError(version)
    active = ActivePolicy(
        version=row.version,
        document=PolicyDocument.model_validate(row.document),
        created_at=row.created_at,
    )
    _parsed[version] = active
    return active


def to_read(active: ActivePolicy) -> PolicyRead:
    return PolicyRead(
        version=active.version, created_at=active.created_at, **active.document.model_dump()
    )


# events.amount_base is NUMERIC(24, 6): a converted amount from 10^18 up cannot be stored.
BASE_LIMIT = Decimal("1e18")


async def replace(session: AsyncSession, *, document: PolicyDocument) -> ActivePolicy:
    """Store `document` as the next version and re-base every stored amount to its rates.

    Under the exclusive policy lock: no batch converts amounts meanwhile, and two changes
    run one after the other.
    """
    await repository.lock_exclusive(session)
    in_use = await repository.currencies_in_use(session)
    errors = _rate_errors(document, in_use)
    if errors:
        raise Invalid("The exchange rates do not fit the stored events", errors=errors)
    version = await repository.insert_next(session, document=document.model_dump(mode="json"))
    rates = {c: rate for c in in_use if (rate := document.rate(c)) is not None}
    await repository.rebase_amounts(session, rates=rates)
    # Other requests of this process see the new version once it is committed.
    after_commit(session, forget)
    row = await repository.get(session, version=version)
    assert row is not None
    return ActivePolicy(version=row.version, document=document, created_at=row.created_at)


def _rate_errors(document: PolicyDocument, in_use: dict[str, Decimal]) -> list[dict[str, Any]]:
    errors = []
    for currency, largest in sorted(in_use.items()):
        rate = document.rate(currency)
        if rate is None:
            errors.append(
                field_error(["exchange_rates", currency], "required: events use this currency")
            )
        elif largest * rate >= BASE_LIMIT:
            errors.append(
                field_error(
                    ["exchange_rates", currency],
                    f"too large: a stored amount would overflow once converted to "
                    f"{document.base_currency}",
                )
            )
    return errors
