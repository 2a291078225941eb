"""A request id on every request: taken from `X-Request-ID` or made up, echoed, and logged.

The gateway sets it in a context variable for the request's duration, so every log event the
request causes carries it (`RequestIdFilter`); each request ends with one `request_finished`
event: method, route, status and duration, never the body.
"""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

HEADER = "X-Request-ID"
# A client's id is kept when it is short and plain; anything else (it is logged) is replaced.
_ACCEPTED = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")

current_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
logger = logging.getLogger(__name__)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record logged while a request is being answered."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current_request_id.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


def accepted_request_id(given: str | None) -> str:
    """The client's id when it is acceptable, else a new random one (32 hex digits)."""
    if given is not None and _ACCEPTED.fullmatch(given):
        return given
    return uuid.uuid4().hex
