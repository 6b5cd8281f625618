"""API keys: issued once in clear text, stored as a SHA-256 hash, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys.models import ApiKey
from app.core.db import ReadRouting, is_replica, is_unavailable

SCOPES = ("read", "write", "admin")
KEY_PREFIX = "sk_"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int
    name: str
    scopes: frozenset[str]


def _hash(key: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough; no password KDF.
    return hashlib.sha256(key.encode()).hexdigest()


def _split(key: str) -> str | None:
    """The lookup prefix of a well-formed key, or None."""
    if not key.startswith(KEY_PREFIX) or len(key) > 128:
        return None
    prefix, _, secret = key[len(KEY_PREFIX) :].partition("_")
    if len(prefix) != 12 or not secret:
        return None
    return prefix


def parse_scopes(text: str) -> list[str]:
    scopes = sorted({s.strip() for s in text.split(",") if s.strip()})
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ValueError(f"scopes must be a comma-separated subset of {', '.join(SCOPES)}")
    return scopes


async def create(session: AsyncSession, *, name: str, scopes: Sequence[str]) -> tuple[ApiKey, str]:
    """Store a new key; return the row and the clear-text key (shown only now)."""
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(name=name, prefix=prefix, key_hash=_hash(key), scopes=list(scopes))
    session.add(row)
    await session.commit()
    return row, key


async def list_keys(session: AsyncSession) -> Sequence[ApiKey]:
    return (await session.scalars(select(ApiKey).order_by(ApiKey.id))).all()


async def revoke(session: AsyncSession, *, prefix: str) -> bool:
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    await session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


class KeyCache:
    """Verified keys for a few seconds, so the hot path skips a database round trip.

    A revoked key stops working within `ttl` seconds.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Principal | None]] = {}

    def get(self, key_hash: str) -> tuple[bool, Principal | None]:
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, key_hash: str, principal: Principal | None) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key_hash] = (time.monotonic() + self.ttl, principal)

    def clear(self) -> None:
        self._entries.clear()


async def _look_up(session: AsyncSession, *, prefix: str, key_hash: str) -> Principal | None:
    row = (
        await session.execute(
            select(ApiKey.id, ApiKey.name, ApiKey.key_hash, ApiKey.scopes).where(
                ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None)
            )
        )
    ).first()
    if row is not None and hmac.compare_digest(row.key_hash, key_hash):
        return Principal(key_id=row.id, name=row.name, scopes=frozenset(row.scopes))
    return None


async def authenticate(routing: ReadRouting, *, key: str, cache: KeyCache) -> Principal | None:
    """The principal a key stands for, or None for an unknown, malformed or revoked key."""
    prefix = _split(key)
    if prefix is None:
        return None
    key_hash = _hash(key)
    hit, principal = cache.get(key_hash)
    if hit:
        return principal
    async with routing.session() as session:
        principal = await _look_up(session, prefix=prefix, key_hash=key_hash)
        replica = is_replica(session)
    if principal is None and replica:
        # A key created a moment ago may not have reached the replica yet.
        try:
            async with routing.primary() as session:
                principal = await _look_up(session, prefix=prefix, key_hash=key_hash)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
    cache.put(key_hash, principal)
    return principal
