"""Shared OpenAPI response descriptions, so every endpoint documents its problems."""

from __future__ import annotations

from typing import Any

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "Malformed request (e.g. a body that is not JSON)",
        401: "Missing, unknown or revoked API key",
        403: "The API key lacks the required scope",
        404: "Not found",
        409: "Conflict",
        413: "Request body too large",
        415: "Body is not application/json",
        422: "Validation failed; `errors` names each bad field",
        503: "The database is not reachable",
    }
    return {status: {"description": text[status], "content": PROBLEM} for status in statuses}


AUTHED = (401, 403, 422)
