"""Errors answered over HTTP: every `ServiceError` becomes a response here, in the body shape of
the API the request was for.

The common shape is `{"error": {"code", "message", "details"}}`; an API with a shape of its own
(the Open Inference Protocol's `/v2` and KServe's v1 `:predict`: `{"error": message}`; the
text-classification shape's `/predict`: `{"error", "error_type"}`) hands it to the
`ErrorResponder` with a pattern of its paths. Errors raised by routes reach it through the
exception handlers; the gateway refuses requests before routing with `ErrorResponder.refuse`,
and answers an unexpected exception 500 itself, so its answer carries the same headers as any
other.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from attnserve.service.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    OtherHTTPError,
    ServiceError,
)

logger = logging.getLogger(__name__)

# An API's error body for an error.
BodyShape = Callable[[ServiceError], dict[str, Any]]


def common_body(error: ServiceError) -> dict[str, Any]:
    """`ErrorBody` (service/schemas.py) as the JSON it is sent as."""
    return {"error": {"code": error.code, "message": error.message, "details": error.details}}


class ErrorResponder:
    """Answers errors: in the shape of the first path pattern (a regular expression matching
    the whole path) that has one, else the common one."""

    def __init__(self, shapes: Mapping[str, BodyShape] | None = None) -> None:
        self.shapes = [
            (re.compile(pattern, re.DOTALL), shape) for pattern, shape in (shapes or {}).items()
        ]

    def response(
        self, error: ServiceError, scope: Scope, headers: Mapping[str, str] | None = None
    ) -> JSONResponse:
        return JSONResponse(
            self._shape(scope)(error), status_code=error.status_code, headers=headers
        )

    def body(self, error: ServiceError, scope: Scope) -> bytes:
        """The error's JSON body, as `response` sends it."""
        return bytes(JSONResponse(self._shape(scope)(error)).body)

    async def refuse(
        self,
        error: ServiceError,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
    ) -> None:
        """Answers `error` before any route sees the request, and logs it; with `close`, the
        connection is closed after it (a body too large is not read on)."""
        log_rejection(scope["path"], error)
        headers = {**(headers or {}), **(error.headers or {})}
        if close:
            headers["Connection"] = "close"
        await self.response(error, scope, headers)(scope, receive, send)

    def _shape(self, scope: Scope) -> BodyShape:
        path: str = scope.get("path", "")
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        for pattern, shape in self.shapes:
            if pattern.fullmatch(path):
                return shape
        return common_body


def install_error_handlers(app: FastAPI, responder: ErrorResponder) -> None:
    """Maps every error a route can raise to `responder`."""

    async def service_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return _answer(responder, request, exc, exc.headers)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _answer(responder, request, invalid_request(exc.errors()))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        error: ServiceError
        if exc.status_code == 404:
            error = NotFound(f"No route for {request.method} {request.url.path}.")
        elif exc.status_code == 400:
            # FastAPI's answer to a body that cannot even be decoded (e.g. invalid UTF-8).
            error = InvalidRequest(f"body: Invalid JSON: {exc.detail}")
        elif exc.status_code == 405:
            error = MethodNotAllowed(
                f"Method {request.method} is not allowed on {request.url.path}."
            )
        else:
            error = OtherHTTPError(exc.status_code, str(exc.detail))
        return _answer(responder, request, error, exc.headers)

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)


def _answer(
    responder: ErrorResponder,
    request: Request,
    error: ServiceError,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    log_rejection(request.url.path, error)
    return responder.response(error, request.scope, headers)


def log_rejection(path: str, error: ServiceError) -> None:
    logger.info(
        "request_rejected", extra={"path": path, "status": error.status_code, "code": error.code}
    )


def invalid_request(errors: Sequence[Any]) -> InvalidRequest:
    """Names the field path of every problem, e.g. `body.texts.0: Input should be a string`."""
    problems = [_problem(error) for error in errors]
    summary = "; ".join(f"{problem['field']}: {problem['message']}" for problem in problems)
    return InvalidRequest(summary, {"errors": problems})


def _problem(error: Mapping[str, Any]) -> dict[str, str]:
    field = ".".join(str(part) for part in error["loc"])
    message = error["msg"]
    if error["type"] == "json_invalid":
        # The location ends with a character position, not a field.
        field = "body"
        message = f"Invalid JSON: {error.get('ctx', {}).get('error', message)}"
    elif error["loc"] == ("body",) and isinstance(error.get("input"), bytes):
        # FastAPI passes the raw bytes on when the Content-Type is not JSON (curl -d sends a form).
        message = "Expected a JSON object sent with Content-Type: application/json"
    return {"field": field, "message": message, "type": error["type"]}
