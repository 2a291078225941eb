"""Refuses request bodies over `max_body_bytes` before anything parses them."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attnserve.service.error_responses import ErrorResponder
from attnserve.service.errors import BodyTooLarge


class BodySizeLimit:
    """Pure ASGI middleware: 413 on a Content-Length over the limit, or once a body outgrows it.

    The body is read here, counted chunk by chunk, and handed on whole: the app buffers it
    anyway to parse it, and a refusal never reaches the app half-read.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, responder: ErrorResponder) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.responder = responder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self.responder.refuse(BodyTooLarge(self.max_body_bytes), scope, receive, send)
            return
        chunks = []
        size = 0
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                error = BodyTooLarge(self.max_body_bytes)
                await self.responder.refuse(error, scope, receive, send)
                return
            chunks.append(chunk)
            more_body = message.get("more_body", False)
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
