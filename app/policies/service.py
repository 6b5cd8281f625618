"""The policy in force: read it (cached per version), replace it (a new version)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

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
        await session.commit()
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


async def replace(session: AsyncSession, *, document: PolicyDocument) -> ActivePolicy:
    """Store `document` as the next version; amounts are re-based when rates change."""
    before = await current_policy(session)
    in_use = await repository.currencies_in_use(session)
    missing = sorted(c for c in in_use if document.rate(c) is None)
    if missing:
        raise Invalid(
            "Stored events use currencies the policy has no exchange rate for",
            errors=[
                field_error(["exchange_rates", c], "required: events use this currency")
                for c in missing
            ],
        )
    version = await repository.insert_next(session, document=document.model_dump(mode="json"))
    changed: dict[str, Decimal] = {}
    for currency in in_use:
        rate = document.rate(currency)
        if rate is not None and rate != before.document.rate(currency):
            changed[currency] = rate
    await repository.rebase_amounts(session, rates=changed)
    await session.commit()
    forget()
    return await policy_version(session, version=version)
