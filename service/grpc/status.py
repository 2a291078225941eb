"""The service's errors as gRPC statuses: the code nearest each error's HTTP status, its
message as the status details, and its `code` and headers as trailing metadata."""

from __future__ import annotations

import grpc

from attnserve.service.errors import RequestTimeout, ServiceError

# Trailing metadata naming the error, as `error.code` of the HTTP error body does.
ERROR_CODE_KEY = "attnserve-error-code"

_BY_HTTP_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,  # as gRPC's own refusal of an oversized message
    422: grpc.StatusCode.INVALID_ARGUMENT,
    # a full queue or models not loaded: worth retrying later, as gRPC clients retry UNAVAILABLE
    503: grpc.StatusCode.UNAVAILABLE,
}


def status_code(error: ServiceError) -> grpc.StatusCode:
    if isinstance(error, RequestTimeout):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    if error.status_code in _BY_HTTP_STATUS:
        return _BY_HTTP_STATUS[error.status_code]
    if 400 <= error.status_code < 500:
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.INTERNAL


def trailing_metadata(error: ServiceError) -> tuple[tuple[str, str], ...]:
    """The error's code, and its HTTP headers (e.g. Retry-After) as lower-case keys."""
    headers = tuple((name.lower(), value) for name, value in (error.headers or {}).items())
    return ((ERROR_CODE_KEY, error.code), *headers)
