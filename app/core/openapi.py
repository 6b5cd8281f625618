"""Shared OpenAPI response descriptions, so every endpoint documents its problems."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Each bad field (validation errors only).",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string", "examples": ["events[3].amount"]},
                    "message": {"type": "string"},
                    "index": {"type": "integer", "description": "Item index in a batch"},
                },
            },
        },
    },
    "examples": [
        {
            "type": "https://stratum.dev/problems/validation",
            "title": "Validation failed",
            "status": 422,
            "detail": "1 invalid field(s)",
            "errors": [
                {"field": "events[3].amount", "message": "must not be negative", "index": 3}
            ],
        }
    ],
}


def install(app: FastAPI) -> None:
    """Add the Problem schema, and make FastAPI's default 422 entries point at it."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                response = operation.get("responses", {}).get("422")
                if response is not None:
                    response["content"] = PROBLEM
        schema["components"]["schemas"].pop("HTTPValidationError", None)
        schema["components"]["schemas"].pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


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


AUTHED = (400, 401, 403, 422)
