"""Every error leaves the service as RFC 9457 problem details, rendered here only."""

from __future__ import annotations

from typing import Any

import orjson
from asyncpg import InterfaceError as DriverInterfaceError
from asyncpg import PostgresConnectionError, PostgresError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

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


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return problem_response(NotFound("No such resource"))
    if exc.status_code == 405:
        problem: Problem = MethodNotAllowed(f"{request.method} is not allowed here")
        problem.headers = dict(exc.headers or {})
        return problem_response(problem)
    if exc.status_code == 401:
        return problem_response(Unauthorized(str(exc.detail)))
    generic = Problem(str(exc.detail))
    generic.status = exc.status_code
    generic.title = "Error"
    return problem_response(generic)


async def _on_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable", exc_type=type(exc).__name__)
    return problem_response(
        ServiceUnavailable(
            "The database is not reachable right now; retry shortly",
            headers={"Retry-After": "5"},
        )
    )


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    # The details go to the log (with the request id), never to the client.
    log.error("unhandled error", exc_type=type(exc).__name__, exc_info=exc)
    return problem_response(Problem("An unexpected error occurred; it has been logged"))


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
    for database_error in (DBAPIError, PostgresError, DriverInterfaceError, PoolTimeout):
        app.add_exception_handler(database_error, _on_database_error)
    app.add_exception_handler(Exception, _on_unexpected)
