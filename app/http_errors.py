"""How an error becomes an HTTP response: the one place that picks the status, headers and body.

One body shape per transport:
- GraphQL (`/graphql`): `{"errors": [{"message", "extensions": {"code"}}]}`. Errors of an executed
  operation go through convert_error (app/graphql/errors.py, Strawberry's result hook); a request
  refused before execution (malformed body, wrong method, body too large) raises, and the exception
  handlers below answer it in this shape.
- Everything else (REST, health, static files, unknown paths): `{"error": {"code", "message"}}`.

The exception handlers of `exception_handlers()` are Starlette's: they pick the shape by the route's
path and the status and headers from the error.

Codes and statuses come from app/errors.py; an exception that is not an AppError is either a
database outage (DATABASE_UNAVAILABLE, logged as a warning) or unexpected (INTERNAL_SERVER_ERROR,
logged with its traceback, message masked unless DEBUG).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from tortoise.exceptions import BaseORMException

from app import db
from app.errors import AppError, BadUserInput, DatabaseUnavailable, InternalError, MethodNotAllowed, NotFound

log = logging.getLogger("app.errors")

MASKED = "Internal server error; it has been logged"


def expected(exc: BaseException, where: str = "") -> AppError | None:
    """The domain error `exc` stands for, or None when nothing expected it."""
    if isinstance(exc, AppError):
        return exc
    if db.is_unavailable(exc):
        log.warning("database unavailable%s: %r", f" in {where}" if where else "", exc)
        return DatabaseUnavailable("the database is unavailable; nothing was changed, try again shortly")
    return None


def unexpected(exc: BaseException, *, debug: bool, where: str = "") -> InternalError:
    """Log `exc` with its traceback and give the client INTERNAL_SERVER_ERROR, masked outside DEBUG."""
    log.error("unexpected error%s", f" in {where}" if where else "", exc_info=exc)
    return InternalError(f"{type(exc).__name__}: {exc}" if debug else MASKED)


def headers(error: AppError) -> dict[str, str]:
    """Response headers an error carries (a retry delay, the methods a route answers)."""
    extra: dict[str, str] = {}
    if "retry_after" in error.details:
        extra["Retry-After"] = str(error.details["retry_after"])
    if "allow" in error.details:
        extra["Allow"] = str(error.details["allow"])
    return extra


def graphql_error(error: AppError) -> dict[str, Any]:
    """One entry of a GraphQL response's `errors`."""
    return {"message": error.message, "extensions": {"code": error.code}}


def graphql_response(error: AppError) -> JSONResponse:
    """A GraphQL request refused before execution: no `data`, one error, the error's HTTP status."""
    return JSONResponse({"errors": [graphql_error(error)]}, status_code=error.http_status, headers=headers(error))


def rest_response(error: AppError) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": error.code, "message": error.message}},
        status_code=error.http_status,
        headers=headers(error),
    )


def from_http_status(status: int, reason: str, allow: str | None = None) -> AppError:
    """The AppError of an HTTP error a framework raised (Starlette's routing, Strawberry's view)."""
    if status == 404:
        return NotFound(reason if reason and reason != "Not Found" else "nothing is served at this path")
    if status == 405:
        if not allow:
            return MethodNotAllowed("this route does not answer this method")
        return MethodNotAllowed(f"this route answers {allow} only", allow=allow)
    error = BadUserInput(reason)
    error.http_status = status if 400 <= status < 500 else 400
    return error


# -- Starlette exception handlers ---------------------------------------------------------------
def exception_handlers(
    *, debug: bool, graphql_paths: frozenset[str]
) -> Mapping[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    """Starlette's `exception_handlers`. The handler of Exception runs in Starlette's
    ServerErrorMiddleware, which re-raises after answering, so the server logs the traceback."""

    def respond(request: Request, error: AppError) -> Response:
        graphql = request.scope["path"] in graphql_paths
        return graphql_response(error) if graphql else rest_response(error)

    async def on_app_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AppError)
        return respond(request, exc)

    async def on_http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return respond(request, from_http_status(exc.status_code, exc.detail, (exc.headers or {}).get("Allow")))

    async def on_disconnect(request: Request, exc: Exception) -> Response:
        # The client went away before sending its whole body: nobody reads this answer.
        return Response(status_code=400)

    async def on_database_error(request: Request, exc: Exception) -> Response:
        error = expected(exc, request.scope["path"])
        if error is None:
            raise exc  # not an outage: on to the handler of unexpected errors
        return respond(request, error)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        return respond(request, InternalError(f"{type(exc).__name__}: {exc}" if debug else MASKED))

    return {
        AppError: on_app_error,
        HTTPException: on_http_exception,
        ClientDisconnect: on_disconnect,
        # What a database outage raises (db.is_unavailable also looks at the causes); anything else
        # of these is unexpected.
        OSError: on_database_error,
        BaseORMException: on_database_error,
        asyncpg.PostgresError: on_database_error,
        asyncpg.InterfaceError: on_database_error,
        sqlite3.Error: on_database_error,
        Exception: on_unexpected,
    }
