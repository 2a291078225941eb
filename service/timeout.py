"""A deadline on every request: past `request_timeout_s` it is answered 503 `request_timeout`.

The clock runs from the first byte the app sees, so a body that trickles in counts too.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attnserve.service.error_responses import ErrorResponder
from attnserve.service.errors import RequestTimeout

logger = logging.getLogger(__name__)


class RequestDeadline:
    """Pure ASGI middleware. A response already under way when time runs out is cut short."""

    def __init__(self, app: ASGIApp, timeout_s: float, responder: ErrorResponder) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.responder = responder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        deadline = asyncio.timeout(self.timeout_s)
        try:
            async with deadline:
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            if not deadline.expired():
                raise
            error = RequestTimeout(self.timeout_s)
            logger.warning(
                "request_timeout",
                extra={"path": scope["path"], "limit_s": self.timeout_s, "started": started},
            )
            if not started:
                answer = self.responder.response(error, scope, {"Retry-After": "1"})
                await answer(scope, receive, send)
