"""The one place errors become HTTP responses; the API never answers 500.

==============================================  ======  =====================================
error                                           status  body
==============================================  ======  =====================================
request validation (body, query, path)          422     ``{"detail": [{"field", "reason"}]}``
pydantic ``ValidationError`` in a route         422     same, fields under ``body.``
``ValidationError``, ``ConfigError``,           422     ``{"detail": [{"field": null,
``SchemaError`` (qianmian)                              "reason": message}]}``
:class:`Unauthorized` (no or unknown key)       401     ``{"detail": message}``
:class:`Forbidden` (role not allowed)           403     ``{"detail": message}``
``NotFoundError``                               404     ``{"detail": message}``
:class:`TooManyRequests`                        429     ``{"detail"}`` + ``Retry-After``
``StoreError``                                  503     ``{"detail", "error_id"}`` +
                                                        ``Retry-After``; cause logged
anything else                                   503     ``{"detail", "error_id"}``; logged
                                                        with its traceback
==============================================  ======  =====================================

A 503 body never repeats the internal message (it may name hosts or connection strings); the
``error_id`` finds it in the log.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qianmian.errors import (
    ConfigError,
    NotFoundError,
    QianmianError,
    SchemaError,
    StoreError,
    ValidationError,
)

__all__ = [
    "ErrorBody",
    "FieldError",
    "Forbidden",
    "NeverServerErrorMiddleware",
    "TooManyRequests",
    "Unauthorized",
    "ValidationErrorBody",
    "field_errors",
    "install_error_handlers",
]

logger = logging.getLogger(__name__)

_MAX_GOT = 60  # characters of an offending value echoed back in a 422


class Unauthorized(QianmianError, PermissionError):
    """No API key was presented, or it is unknown or disabled."""


class Forbidden(QianmianError, PermissionError):
    """The key's role may not call this endpoint."""


class TooManyRequests(QianmianError):
    """The key used up its request limit; ``retry_after`` seconds until it may ask again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# -- the bodies of error responses (documented on the OpenAPI page) -------------------------


class FieldError(BaseModel):
    """One bad field: where (``body.customer_id``, ``query.limit``) and why."""

    field: str | None
    reason: str


class ValidationErrorBody(BaseModel):
    """422: every bad field of the request."""

    detail: list[FieldError]


class ErrorBody(BaseModel):
    """401, 403, 404, 429, 503: what went wrong; ``error_id`` finds a 503's cause in the log."""

    detail: str
    error_id: str | None = None


def _reason(error: Any) -> str:
    message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
    value = error.get("input")
    if error.get("type") == "missing" or isinstance(value, dict | list) or value is None:
        return message
    shown = repr(value)
    if shown in message:  # our own validators already quote the value
        return message
    if len(shown) > _MAX_GOT:
        shown = shown[:_MAX_GOT] + "…"
    return f"{message}; got {shown}"


def _field(error: Any, prefix: tuple[str | int, ...]) -> str:
    loc = tuple(error.get("loc", ()))
    if error.get("type") == "json_invalid":  # the location is a character offset, not a field
        loc = loc[:1]
    return ".".join(str(p) for p in (*prefix, *loc)) or "body"


def field_errors(errors: Sequence[Any], prefix: tuple[str | int, ...] = ()) -> list[dict[str, str]]:
    """pydantic errors as ``[{"field": "body.customer_id", "reason": ...}]``.

    >>> field_errors([{"loc": ("customer_id",), "msg": "Input should be greater than 0",
    ...                "type": "greater_than", "input": -1}], prefix=("body",))
    [{'field': 'body.customer_id', 'reason': 'Input should be greater than 0; got -1'}]
    """
    out = []
    for error in errors:
        reason = _reason(error)
        if error.get("type") == "json_invalid":
            where = error["loc"][1] if len(error.get("loc", ())) > 1 else "?"
            cause = (error.get("ctx") or {}).get("error", "")
            reason = f"{error.get('msg', 'JSON decode error')} at character {where}: {cause}"
        out.append({"field": _field(error, prefix), "reason": reason})
    return out


def _error_id() -> str:
    return uuid.uuid4().hex[:16]


async def _request_invalid(request: Request, exc: Exception) -> Response:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse({"detail": field_errors(errors)}, status_code=422)


async def _model_invalid(request: Request, exc: Exception) -> Response:
    # Raised by a route validating part of its body itself (an offer spec): fields are in it.
    errors = exc.errors() if isinstance(exc, PydanticValidationError) else []
    return JSONResponse({"detail": field_errors(errors, ("body",))}, status_code=422)


async def _domain_invalid(request: Request, exc: Exception) -> Response:
    field = getattr(exc, "field", None)
    return JSONResponse({"detail": [{"field": field, "reason": str(exc)}]}, status_code=422)


def _plain(status: int) -> Any:
    async def handler(request: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=status)

    return handler


async def _unauthorized(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "ApiKey"}
    )


async def _too_many(request: Request, exc: Exception) -> Response:
    retry = getattr(exc, "retry_after", 1)
    return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": str(retry)})


async def _store_down(request: Request, exc: Exception) -> Response:
    error_id = _error_id()
    logger.warning(
        "Storage failed on %s %s (error %s): %s", request.method, request.url.path, error_id, exc
    )
    return JSONResponse(
        {
            "detail": f"A storage backend is unavailable (error {error_id}); the cause is in the "
            "service log. Try again shortly.",
            "error_id": error_id,
        },
        status_code=503,
        headers={"Retry-After": "1"},
    )


def _unexpected_body(error_id: str) -> bytes:
    return json.dumps(
        {
            "detail": f"The service could not complete the request (error {error_id}); the "
            "cause is in the service log. Try again, and quote the error id if it persists.",
            "error_id": error_id,
        }
    ).encode()


class NeverServerErrorMiddleware:
    """Turn any exception no handler took into a logged 503 with an ``error_id``.

    A pure ASGI middleware (not ``BaseHTTPMiddleware``, which costs a task per request), placed
    outside the routing so it sees what the route handlers let through. Starlette's own
    catch-all re-raises after answering; this one does not, so servers log the error once.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except Exception:
            error_id = _error_id()
            logger.exception(
                "Unexpected error on %s %s (error %s)", scope["method"], scope["path"], error_id
            )
            if started:  # too late to change the answer; let the server close the connection
                raise
            body = _unexpected_body(error_id)
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})


def install_error_handlers(app: FastAPI) -> None:
    """Register every error → HTTP mapping of the table above on ``app``."""
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(PydanticValidationError, _model_invalid)
    for domain_error in (ValidationError, ConfigError, SchemaError):
        app.add_exception_handler(domain_error, _domain_invalid)
    app.add_exception_handler(Unauthorized, _unauthorized)
    app.add_exception_handler(Forbidden, _plain(403))
    app.add_exception_handler(NotFoundError, _plain(404))
    app.add_exception_handler(TooManyRequests, _too_many)
    app.add_exception_handler(StoreError, _store_down)
    app.add_middleware(NeverServerErrorMiddleware)
