"""Every error leaves the service as RFC 9457 problem details, rendered here only."""

from __future__ import annotations

import re
from typing import Any

import orjson
import structlog
from asyncpg import InterfaceError as DriverInterfaceError
from asyncpg import PostgresConnectionError, PostgresError
from asyncpg.exceptions import InternalClientError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.db import is_unavailable
from app.core.observability import log
from app.core.problems import (
    BadRequest,
    Invalid,
    MethodNotAllowed,
    NotFound,
    Problem,
    ServiceUnavailable,
    Unauthorized,
    field_error,
)


def problem_response(problem: Problem) -> Response:
    return Response(
        content=orjson.dumps(problem.body()),
        status_code=problem.status,
        media_type="application/problem+json",
        headers=problem.headers,
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors():
        loc = [part for part in error.get("loc", ()) if part != "body"]
        # Validators add context to the message for unions; keep the first line only.
        message = str(error.get("msg", "Invalid value")).split("\n")[0]
        message = message.removeprefix("Value error, ")
        entry = field_error(loc or ["body"], message)
        if loc[:1] == ["events"] and len(loc) > 1 and isinstance(loc[1], int):
            entry["index"] = loc[1]
        errors.append(entry)
    return errors


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc)


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    if any(e["message"].startswith("JSON decode error") for e in errors):
        return problem_response(BadRequest("The request body is not valid JSON"))
    return problem_response(Invalid(f"{len(errors)} invalid field(s)", errors=errors))


_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _method_table(app: Any) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """Path patterns and their methods, from the documented operations (built once)."""
    table: list[tuple[re.Pattern[str], frozenset[str]]] | None = getattr(
        app.state, "method_table", None
    )
    if table is None:
        table = [
            (compile_path(path)[0], frozenset(m.upper() for m in ops) & _HTTP_METHODS)
            for path, ops in app.openapi().get("paths", {}).items()
        ]
        app.state.method_table = table
    return table


def _allowed_methods(request: Request, exc: StarletteHTTPException) -> str:
    """Every method served at this path: the router names only the first route whose
    path matched, and a path often has one route per method."""
    named = (exc.headers or {}).get("Allow", "")
    methods = {m.strip() for m in named.split(",") if m.strip()}
    path = request.scope.get("path", "")
    # The first documented path that matches is the one the router would take
    # (`/v1/segments/overview` before `/v1/segments/{key}`).
    for pattern, served in _method_table(request.app):
        if pattern.match(path):
            methods |= served
            break
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return problem_response(NotFound("No such resource"))
    if exc.status_code == 405:
        problem: Problem = MethodNotAllowed(f"{request.method} is not allowed here")
        problem.headers = {**dict(exc.headers or {}), "Allow": _allowed_methods(request, exc)}
        return problem_response(problem)
    if exc.status_code == 401:
        return problem_response(Unauthorized(str(exc.detail)))
    generic = Problem(str(exc.detail))
    generic.status = exc.status_code
    generic.title = "Error"
    return problem_response(generic)


async def _on_unavailable(request: Request, exc: Exception) -> Response:
    return _unavailable(exc)


def _unavailable(exc: BaseException) -> Response:
    log.warning("database unavailable", exc_type=type(exc).__name__)
    return problem_response(
        ServiceUnavailable(
            "The database is not reachable right now; retry shortly",
            headers={"Retry-After": "5"},
        )
    )


def _unexpected(exc: BaseException) -> Response:
    # The details go to the log (with the request id), never to the client; the id in the
    # answer lets a caller's report be matched with that log line.
    log.error("unhandled error", exc_type=type(exc).__name__, exc_info=exc)
    body = Problem("An unexpected error occurred; it has been logged").body()
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id:
        body["request_id"] = request_id
    return Response(
        content=orjson.dumps(body), status_code=500, media_type="application/problem+json"
    )


def _last_resort(exc: BaseException) -> Response:
    # An outage can arrive in a wrapper no handler is registered for (a raw pool
    # connection raises the driver adapter's own error): still a 503, not a bug.
    return _unavailable(exc) if is_unavailable(exc) else _unexpected(exc)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    return _last_resort(exc)


class UnexpectedErrorMiddleware:
    """A bug becomes a 500 problem inside the request's context (its id, its access log
    line); Starlette's own last-resort handler runs outside every middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:
            if started:
                raise
            await _last_resort(exc)(scope, receive, send)


async def _on_database_error(request: Request, exc: Exception) -> Response:
    # A restart, a full pool or a timed-out wait is a 503; any other database error a bug.
    if is_unavailable(exc):
        return await _on_unavailable(request, exc)
    return await _on_unexpected(request, exc)


def install(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    for unavailable in (OperationalError, InterfaceError, OSError, PostgresConnectionError):
        app.add_exception_handler(unavailable, _on_unavailable)
    for database_error in (
        DBAPIError,
        PostgresError,
        DriverInterfaceError,
        InternalClientError,
        PoolTimeout,
    ):
        app.add_exception_handler(database_error, _on_database_error)
    app.add_exception_handler(Exception, _on_unexpected)
    # Added first, so innermost: inside the request-context middleware.
    app.add_middleware(UnexpectedErrorMiddleware)
