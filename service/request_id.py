"""A request id on every request: taken from `X-Request-ID` or made up, echoed, and logged.

The id lives in a context variable for the request's duration, so every log event the
request causes carries it (`RequestIdFilter`), and each request ends with one
`request_finished` event: method, route, status and duration, never the body.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attnserve.service.route_label import route_template

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


class RequestIdMiddleware:
    """Pure ASGI middleware: sets the request id, echoes it in `X-Request-ID`, logs the end."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accepted_request_id(_header(scope, b"x-request-id"))
        token = current_request_id.set(request_id)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        answered = False
        try:
            await self.app(scope, receive, send_with_id)
            answered = True
        finally:
            logger.info(
                "request_finished",
                extra={
                    "method": scope["method"],
                    "route": route_template(scope),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - start) * 1000.0, 3),
                },
            )
            # An exception goes on to the 500 handler further out, which logs it: with the id.
            if answered:
                current_request_id.reset(token)


def accepted_request_id(given: str | None) -> str:
    """The client's id when it is acceptable, else a new random one (32 hex digits)."""
    if given is not None and _ACCEPTED.fullmatch(given):
        return given
    return uuid.uuid4().hex


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
