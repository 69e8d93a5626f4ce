"""One error shape for every HTTP error, registered once in the factory; the pipeline's
refusals and the store's failures become answers here."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from app.pipeline.errors import Malformed, Refused, WrongAccount

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An HTTP error answered as `{"error": {"code", "message", "details"}}`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


@contextmanager
def store_failures_as(status: int, retry_after: int, message: str) -> Iterator[None]:
    """Answer a store failure with `status` and Retry-After: nothing was acknowledged."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        log.error("store unavailable, answered %s: %s", status, cause(exc))
        raise ApiError(
            status, "store_unavailable", message, headers={"Retry-After": str(retry_after)}
        ) from exc


def cause(exc: sa.exc.DBAPIError) -> str:
    """What the store said, for the log: the driver's first line when the store itself is
    unavailable (a refused connection, a full disk), else only the kind of error, which
    may quote the values of the row (personal data)."""
    kind = type(exc.orig or exc).__name__
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return f"{kind}: {str(exc.orig).splitlines()[0] if exc.orig else exc}"
    return kind


def error_response(error: ApiError) -> Response:
    body = {"error": {"code": error.code, "message": error.message, "details": error.details}}
    response = jsonify(body)
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


# Werkzeug's own errors (routing, size limit) in our shape, with actionable text.
_HTTP_MESSAGES = {
    404: ("not_found", "No such endpoint; see the README for the bridge's endpoints."),
    405: ("method_not_allowed", "This endpoint does not accept that method; use POST."),
    413: ("payload_too_large", "The body is over the size limit; send fewer messages per request."),
}


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code, message = _HTTP_MESSAGES.get(
        status, ((exc.name or "error").lower().replace(" ", "_"), exc.description or "")
    )
    return error_response(ApiError(status, code, message))


REFUSED_STATUS: dict[type[Refused], int] = {Malformed: 400, WrongAccount: 403}


def _refused(error: Refused) -> Response:
    status = REFUSED_STATUS.get(type(error), 400)
    return error_response(ApiError(status, error.code, error.message, error.details))


def init_app(app: Flask) -> None:
    app.register_error_handler(ApiError, error_response)
    app.register_error_handler(Refused, _refused)
    app.register_error_handler(HTTPException, _http_error)
