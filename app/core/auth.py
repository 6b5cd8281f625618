"""Bearer API keys and scope-checked dependency aliases for endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from app.apikeys.service import KeyCache, Principal, authenticate
from app.core.db import ReadRouting
from app.core.problems import Forbidden, Unauthorized

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class _ScopedKey(HTTPBearer):
    """The bearer scheme (as documented in OpenAPI), the key check and the scope check
    in one dependency: each level of dependencies costs every request."""

    def __init__(self, scope: str) -> None:
        super().__init__(
            auto_error=False,
            scheme_name="HTTPBearer",
            description="An API key: `Authorization: Bearer sk_...`",
        )
        self.scope = scope

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        scheme, _, key = (request.headers.get("authorization") or "").partition(" ")
        if not key or scheme.lower() != "bearer":
            raise Unauthorized("Missing bearer API key", headers=_CHALLENGE)
        cache: KeyCache = request.app.state.key_cache
        # A verified key is cached, so most requests touch no database here; a look-up
        # reads where other reads go (a replica while the primary is down).
        routing: ReadRouting = request.app.state.reads
        principal = await authenticate(routing, key=key, cache=cache)
        if principal is None:
            raise Unauthorized("Unknown or revoked API key", headers=_CHALLENGE)
        # Scopes are independent grants: a key does exactly what its scopes name.
        if self.scope not in principal.scopes:
            raise Forbidden(f"This API key lacks the '{self.scope}' scope")
        return principal


ReadAccess = Annotated[Principal, Depends(_ScopedKey("read"))]
WriteAccess = Annotated[Principal, Depends(_ScopedKey("write"))]
AdminAccess = Annotated[Principal, Depends(_ScopedKey("admin"))]
