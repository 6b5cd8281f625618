"""Dashboard sign-in: a `read` API key is exchanged for a browser session.

The cookie carries a random token, the database only its SHA-256, so neither the key
nor anything that opens the session is stored in the clear anywhere. Each session has
its own CSRF token, required in every form it posts; the sign-in form itself is guarded
by a double-submit token (a cookie and a hidden field that must match).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys.service import KeyCache, authenticate
from app.core.db import ReadRouting
from app.dashboard import repository

SESSION_COOKIE = "stratum_session"
SIGN_IN_COOKIE = "stratum_sign_in"
SESSION_LIFETIME = timedelta(hours=8)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: the key's name and prefix (never the key), and the form token."""

    key_name: str
    key_prefix: str
    csrf_token: str
    token_hash: str


class SignInRefused(Exception):
    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


async def sign_in(
    session: AsyncSession, *, routing: ReadRouting, api_key: str, cache: KeyCache
) -> str:
    """A new session token for a valid key with the `read` scope."""
    principal = await authenticate(routing, key=api_key.strip(), cache=cache)
    if principal is None:
        raise SignInRefused("bad_key", 401)
    if "read" not in principal.scopes:
        raise SignInRefused("no_read_scope", 403)
    token = new_token()
    await repository.drop_expired_sessions(session)
    await repository.add_session(
        session,
        token_hash=_hash(token),
        key_id=principal.key_id,
        csrf_token=new_token(),
        expires_at=datetime.now(UTC) + SESSION_LIFETIME,
    )
    await session.flush()
    return token


async def viewer(request: Request, session: AsyncSession) -> Viewer | None:
    """The signed-in viewer of this request, or None (no, expired or revoked session)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 128:
        return None
    token_hash = _hash(token)
    row = await repository.find_session(session, token_hash=token_hash)
    if row is None:
        return None
    return Viewer(
        key_name=row.name, key_prefix=row.prefix, csrf_token=row.csrf_token, token_hash=token_hash
    )


async def sign_out(session: AsyncSession, *, viewer: Viewer) -> None:
    await repository.remove_session(session, token_hash=viewer.token_hash)
    await session.flush()
