"""What the client raises.

AttnserveError
├── APIError              the service answered an error: status, code, message, details
│   └── ServiceUnavailable    503, still after every retry
└── TransportError        no answer: the connection failed (after every retry)
    └── Timeout               no answer within the timeout
"""

from __future__ import annotations

from typing import Any


class AttnserveError(Exception):
    """Anything the client raises."""


class APIError(AttnserveError):
    """The service answered with an error body `{"error": {code, message, details}}`."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class ServiceUnavailable(APIError):
    """503 on every attempt: the service is starting, overloaded or timed out."""


class TransportError(AttnserveError):
    """The request got no answer."""


class Timeout(TransportError):
    """The request got no answer within the client's timeout."""
