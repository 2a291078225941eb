"""Request bodies over `max_body_bytes` are refused before anything parses them."""

from __future__ import annotations

from starlette.types import Receive, Scope

from attnserve.service.errors import BodyTooLarge


def declared_too_large(scope: Scope, max_body_bytes: int) -> bool:
    """The request's Content-Length is over the limit: refuse it before reading a byte."""
    declared = next((value for name, value in scope["headers"] if name == b"content-length"), b"")
    return declared.isdigit() and int(declared) > max_body_bytes


async def read_body(receive: Receive, max_body_bytes: int) -> bytes | None:
    """The whole body, counted chunk by chunk as it arrives; None when the client went away.

    Raises BodyTooLarge as soon as the body outgrows the limit."""
    chunks = []
    size = 0
    more_body = True
    while more_body:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body_bytes:
            raise BodyTooLarge(max_body_bytes)
        chunks.append(chunk)
        more_body = message.get("more_body", False)
    return b"".join(chunks)
