"""Bearer API keys and scope-checked dependency aliases for endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.apikeys.service import KeyCache, Principal, authenticate
from app.core.db import ReadRouting
from app.core.problems import Forbidden, Unauthorized

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer sk_...`")

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Missing bearer API key", headers=_CHALLENGE)
    cache: KeyCache = request.app.state.key_cache
    # A verified key is cached, so most requests touch no database here; a look-up
    # reads where other reads go (a replica while the primary is down).
    routing: ReadRouting = request.app.state.reads
    principal = await authenticate(routing, key=credentials.credentials, cache=cache)
    if principal is None:
        raise Unauthorized("Unknown or revoked API key", headers=_CHALLENGE)
    return principal


def _require(scope: str) -> Callable[..., Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        # Scopes are independent grants: a key does exactly what its scopes name.
        if scope not in principal.scopes:
            raise Forbidden(f"This API key lacks the '{scope}' scope")
        return principal

    return check


ReadAccess = Annotated[Principal, Depends(_require("read"))]
WriteAccess = Annotated[Principal, Depends(_require("write"))]
AdminAccess = Annotated[Principal, Depends(_require("admin"))]
