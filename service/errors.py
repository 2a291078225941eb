"""The service's errors: a small closed family, each carrying its HTTP status and code.

`error_responses.py` answers them (one body shape per API); nothing here knows HTTP frameworks.

ServiceError                 a request answered with `status_code`, `code`, message, details
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
├── TextTooLong              413  a text longer than `max_text_chars` (also once normalised)
├── HeadsTooLarge            413  `detail: heads` for more weights than `max_heads_values`
├── BodyTooLarge             413  a body larger than `max_body_bytes`
├── ModelNotReady            503  models are not loaded (yet, or any more)
├── ModelUnavailable         503  that model's artifact failed verification at startup
├── RequestTimeout           503  the request took longer than `request_timeout_s`
├── Overloaded               503  the batching queue is full; Retry-After says when to retry
│   └── QueueTooSlow         503  what waits would take longer than `max_queue_wait_s` to run
├── TooManyConnections       503  more connections are open than `max_connections`
├── BodiesOverBudget         503  request bodies being received fill `max_buffered_body_bytes`
├── HeadsOverBudget          503  `max_heads_in_flight` `detail: heads` answers are under way
└── InternalError            500  our bug; the details stay in the server log

StartupError                 the service cannot start; raised before serving anything
├── ProviderUnavailable      the requested execution provider is not available
├── ArtifactError            a model directory does not match its manifest
└── RepositoryError          the repository holds no usable model, or no clear default
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any


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

    def __init__(self, index: int, length: int, limit: int, normalized: bool = False) -> None:
        what = "characters once normalised (Unicode NFKD)" if normalized else "characters"
        details: dict[str, Any] = {"index": index, "length": length, "limit": limit}
        super().__init__(
            f"Text at index {index} has {length} {what}, the limit is {limit}.",
            details | ({"normalized": True} if normalized else {}),
        )


class HeadsTooLarge(ServiceError):
    status_code = 413
    code = "heads_too_large"

    def __init__(self, values: int, limit: int) -> None:
        super().__init__(
            f"The self-attention maps of these texts hold {values} weights, the limit is "
            f"{limit}: ask `detail: heads` of fewer or shorter texts.",
            {"values": values, "limit": limit},
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


class QueueTooSlow(Overloaded):
    def __init__(self, queued: int, expected_s: float, budget_s: float) -> None:
        retry_after_s = max(1, math.ceil(expected_s - budget_s))
        ServiceError.__init__(
            self,
            f"The server is busy: the {queued} texts waiting would take about {expected_s:.1f} s "
            f"to run, longer than the {budget_s:g} s a request may wait. "
            f"Retry after {retry_after_s} s.",
            {
                "queued": queued,
                "expected_wait_s": round(expected_s, 3),
                "limit_s": budget_s,
                "retry_after_s": retry_after_s,
            },
        )
        self.headers = {"Retry-After": str(retry_after_s)}


class HeadsOverBudget(ServiceError):
    status_code = 503
    code = "overloaded"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The server is busy: {limit} `detail: heads` answers are being computed or sent, "
            "the most it holds at once. Retry after 1 s.",
            {"limit": limit, "retry_after_s": 1},
        )
        self.headers = {"Retry-After": "1"}


class TooManyConnections(ServiceError):
    status_code = 503
    code = "too_many_connections"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The server holds as many connections as it takes ({limit}): retry shortly, "
            "on a connection of its own.",
            {"limit": limit},
        )
        self.headers = {"Retry-After": "1"}


class BodiesOverBudget(ServiceError):
    status_code = 503
    code = "overloaded"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The server is receiving as many request bodies as it holds ({limit} bytes): "
            "retry shortly.",
            {"limit": limit},
        )
        self.headers = {"Retry-After": "1"}


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
