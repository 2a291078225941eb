"""The service's errors, and the one place that turns them into HTTP responses.

ServiceError                 answered as {"error": {code, message, details}}, or on the Open
│                            Inference Protocol's /v2 routes as its {"error": message}
├── InvalidRequest           422  the body is not valid JSON or does not fit the schema
├── InvalidInferenceRequest  400  a /v2 inference request the protocol does not allow
├── EmptyText                422  a text has no tokens: nothing to classify
├── DetailUnavailable        422  `detail` asked of a model that does not export it
├── MissingApiKey            401  API keys are configured and the request carries none
├── InvalidApiKey            403  the request's API key is not one of them
├── NotFound                 404  no route for the path
├── ModelNotFound            404  no model of that name
├── ModelVersionNotFound     404  the model is served at another version
├── MethodNotAllowed         405
├── OtherHTTPError           4xx  any other refusal by the HTTP layer (e.g. 400 unreadable body)
├── TooManyTexts             413  more texts than `max_texts_per_request`
├── TextTooLong              413  a text longer than `max_text_chars`
├── BodyTooLarge             413  a body larger than `max_body_bytes`
├── ModelNotReady            503  models are not loaded (yet, or any more)
├── ModelUnavailable         503  that model's artifact failed verification at startup
├── RequestTimeout           503  the request took longer than `request_timeout_s`
├── Overloaded               503  the batching queue is full; Retry-After says when to retry
└── InternalError            500  our bug; the details stay in the server log

StartupError                 the service cannot start; raised before serving anything
├── ProviderUnavailable      the requested execution provider is not available
├── ArtifactError            a model directory does not match its manifest
└── RepositoryError          the repository holds no usable model, or no clear default
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from attnserve.service.headers import API_POLICY, SECURITY_HEADERS
from attnserve.service.oip.schemas import ProtocolErrorBody
from attnserve.service.request_id import HEADER as REQUEST_ID_HEADER
from attnserve.service.request_id import current_request_id
from attnserve.service.schemas import ErrorBody, ErrorInfo

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """An error answered to the client with `status_code` and the common error body."""

    status_code: int = 500
    code: str = "internal_error"
    headers: Mapping[str, str] | None = None

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequest(ServiceError):
    status_code = 422
    code = "invalid_request"


class InvalidInferenceRequest(ServiceError):
    status_code = 400
    code = "invalid_inference_request"


class EmptyText(ServiceError):
    status_code = 422
    code = "empty_text"

    def __init__(self, indices: list[int]) -> None:
        what = (
            f"Text at index {indices[0]} is empty or has"
            if len(indices) == 1
            else f"Texts at indices {', '.join(map(str, indices))} are empty or have"
        )
        super().__init__(f"{what} no tokens: there is nothing to classify.", {"indices": indices})


class MissingApiKey(ServiceError):
    status_code = 401
    code = "missing_api_key"

    def __init__(self) -> None:
        super().__init__("This service needs an API key: send 'Authorization: Bearer <key>'.")


class InvalidApiKey(ServiceError):
    status_code = 403
    code = "invalid_api_key"

    def __init__(self) -> None:
        super().__init__("The API key is not valid.")


class DetailUnavailable(ServiceError):
    status_code = 422
    code = "detail_unavailable"

    def __init__(self, detail: str, model: str) -> None:
        super().__init__(
            f"Model '{model}' has no '{detail}' output; the models listing '{detail}' "
            "among their outputs in GET /v1/models can answer it.",
            {"detail": detail, "model": model},
        )


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class ModelNotFound(ServiceError):
    status_code = 404
    code = "model_not_found"

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"No model named '{name}'. Known models: {', '.join(known)}.",
            {"model": name, "known": known},
        )


class ModelVersionNotFound(ServiceError):
    status_code = 404
    code = "model_version_not_found"

    def __init__(self, name: str, version: str, served: list[str]) -> None:
        super().__init__(
            f"Model '{name}' has no version '{version}'. Served versions: {', '.join(served)}.",
            {"model": name, "version": version, "served": served},
        )


class MethodNotAllowed(ServiceError):
    status_code = 405
    code = "method_not_allowed"


class OtherHTTPError(ServiceError):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = HTTPStatus(status_code).phrase.lower().replace(" ", "_")


class TooManyTexts(ServiceError):
    status_code = 413
    code = "too_many_texts"

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(
            f"Too many texts: {count} in one request, the limit is {limit}.",
            {"count": count, "limit": limit},
        )


class TextTooLong(ServiceError):
    status_code = 413
    code = "text_too_long"

    def __init__(self, index: int, length: int, limit: int) -> None:
        super().__init__(
            f"Text at index {index} has {length} characters, the limit is {limit}.",
            {"index": index, "length": length, "limit": limit},
        )


class BodyTooLarge(ServiceError):
    status_code = 413
    code = "body_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Request body is larger than the limit of {limit} bytes.", {"limit": limit}
        )


class ModelNotReady(ServiceError):
    status_code = 503
    code = "model_not_ready"

    def __init__(self, unavailable: list[str] | None = None) -> None:
        if unavailable:
            super().__init__(
                f"Not ready: unavailable models {', '.join(unavailable)} (see GET /v1/models).",
                {"unavailable": unavailable},
            )
        else:
            super().__init__("Models are not loaded; try again shortly.")


class ModelUnavailable(ServiceError):
    status_code = 503
    code = "model_unavailable"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(
            f"Model '{name}' is unavailable: its artifact failed verification at startup.",
            {"model": name, "reason": reason},
        )


class RequestTimeout(ServiceError):
    status_code = 503
    code = "request_timeout"

    def __init__(self, limit_s: float) -> None:
        super().__init__(
            f"The request took longer than the limit of {limit_s:g} s.", {"limit_s": limit_s}
        )


class Overloaded(ServiceError):
    status_code = 503
    code = "overloaded"

    def __init__(self, queued: int, limit: int, retry_after_s: int) -> None:
        super().__init__(
            f"The server is busy: {queued} texts are waiting, the queue holds {limit}. "
            f"Retry after {retry_after_s} s.",
            {"queued": queued, "limit": limit, "retry_after_s": retry_after_s},
        )
        self.headers = {"Retry-After": str(retry_after_s)}


class InternalError(ServiceError):
    status_code = 500
    code = "internal_error"

    def __init__(self) -> None:
        super().__init__("Internal server error.")


class StartupError(Exception):
    """The service cannot start; the message says what to fix."""


class ProviderUnavailable(StartupError):
    pass


class ArtifactError(StartupError):
    pass


class RepositoryError(StartupError):
    pass


def error_response(error: ServiceError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The response for any error, whoever answers it (a route, a handler, a middleware)."""
    return ErrorResponse(error, headers)


class ErrorResponse(JSONResponse):
    """The one body shape of every error; the Open Inference Protocol's on its /v2 routes.

    The shape is picked when the response is sent, from the request's path, so middleware
    that refuses a request before any route sees it answers /v2 clients in their shape too.
    """

    def __init__(self, error: ServiceError, headers: Mapping[str, str] | None = None) -> None:
        body = ErrorBody(
            error=ErrorInfo(code=error.code, message=error.message, details=error.details)
        )
        super().__init__(body.model_dump(), status_code=error.status_code, headers=headers)
        self.error = error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_oip_route(scope):
            self.body = self.render(ProtocolErrorBody(error=self.error.message).model_dump())
            self.headers["content-length"] = str(len(self.body))
        await super().__call__(scope, receive, send)


def is_oip_route(scope: Scope) -> bool:
    """The request is for the Open Inference Protocol's /v2 routes (under any root path)."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path == "/v2" or path.startswith("/v2/")


def install_error_handlers(app: FastAPI) -> None:
    """Maps every error the app can raise to `error_response`."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return _answer(request, exc, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _answer(request, _invalid_request(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    error: ServiceError
    if exc.status_code == 404:
        error = NotFound(f"No route for {request.method} {request.url.path}.")
    elif exc.status_code == 400:
        # FastAPI's answer to a body that cannot even be decoded (e.g. invalid UTF-8).
        error = InvalidRequest(f"body: Invalid JSON: {exc.detail}")
    elif exc.status_code == 405:
        error = MethodNotAllowed(f"Method {request.method} is not allowed on {request.url.path}.")
    else:
        error = OtherHTTPError(exc.status_code, str(exc.detail))
    return _answer(request, error, exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("internal_error", extra={"path": request.url.path}, exc_info=exc)
    # Starlette sends this answer from outside every middleware of ours: it gets their headers
    # here (the request id is still set: the request-id middleware keeps it for this log).
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": API_POLICY}
    request_id = current_request_id.get()
    if request_id is not None:
        headers[REQUEST_ID_HEADER] = request_id
    return error_response(InternalError(), headers)


def _answer(
    request: Request, error: ServiceError, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    _log_rejection(request.url.path, error)
    return error_response(error, headers)


async def refuse(
    error: ServiceError,
    scope: Scope,
    receive: Receive,
    send: Send,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Answers `error` from a middleware, before any route sees the request, and logs it."""
    _log_rejection(scope["path"], error)
    await error_response(error, headers)(scope, receive, send)


def _log_rejection(path: str, error: ServiceError) -> None:
    logger.info(
        "request_rejected", extra={"path": path, "status": error.status_code, "code": error.code}
    )


def _invalid_request(exc: RequestValidationError) -> InvalidRequest:
    """Names the field path of every problem, e.g. `body.texts.0: Input should be a string`."""
    problems = [_problem(error) for error in exc.errors()]
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
