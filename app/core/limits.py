"""Request body limits and media-type checks, before any handler parses a byte."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.problems import PayloadTooLarge, Problem, UnsupportedMediaType

_BODY_METHODS = {"POST", "PUT", "PATCH"}


async def _send_problem(send: Send, problem: Problem) -> None:
    body = orjson.dumps(problem.body())
    await send(
        {
            "type": "http.response.start",
            "status": problem.status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """413 for bodies over `max_bytes` (declared or streamed); 415 for non-JSON bodies."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _send_problem(
                send, PayloadTooLarge(f"Request bodies are limited to {self.max_bytes} bytes")
            )
            return
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        has_body = declared not in (None, b"0") or b"transfer-encoding" in headers
        # The dashboard's HTML forms post urlencoded fields; the API takes only JSON.
        form = content_type == b"application/x-www-form-urlencoded" and scope["path"].startswith(
            "/dashboard/"
        )
        if has_body and not (
            content_type == b"application/json" or content_type.endswith(b"+json") or form
        ):
            await _send_problem(
                send, UnsupportedMediaType("Send the request body as application/json")
            )
            return

        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await _send_problem(
                send, PayloadTooLarge(f"Request bodies are limited to {self.max_bytes} bytes")
            )


class _TooLarge(Exception):
    pass
