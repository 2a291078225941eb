"""Request bodies over `max_body_bytes` are refused before anything parses them, and the bytes
of all bodies still arriving are held within one budget."""

from __future__ import annotations

from starlette.types import Receive, Scope

from attnserve.service.errors import BodiesOverBudget, BodyTooLarge


class BodyBudget:
    """The bytes of request bodies held while they arrive, over every request of the process."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held = 0

    def take(self, size: int) -> None:
        """Holds `size` more bytes; raises BodiesOverBudget (taking none) past the budget."""
        if self.held + size > self.max_bytes:
            raise BodiesOverBudget(self.max_bytes)
        self.held += size

    def give_back(self, size: int) -> None:
        self.held -= size


def declared_too_large(scope: Scope, max_body_bytes: int) -> bool:
    """The request's Content-Length is over the limit: refuse it before reading a byte."""
    declared = next((value for name, value in scope["headers"] if name == b"content-length"), b"")
    return declared.isdigit() and int(declared) > max_body_bytes


async def read_body(receive: Receive, max_body_bytes: int, budget: BodyBudget) -> bytes | None:
    """The whole body, counted chunk by chunk as it arrives; None when the client went away.

    Raises BodyTooLarge as soon as the body outgrows the limit, BodiesOverBudget when the
    process holds too many bodies' bytes; what it held while reading is given back."""
    chunks = []
    size = 0
    more_body = True
    try:
        while more_body:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            if size + len(chunk) > max_body_bytes:
                raise BodyTooLarge(max_body_bytes)
            budget.take(len(chunk))
            size += len(chunk)
            chunks.append(chunk)
            more_body = message.get("more_body", False)
        return b"".join(chunks)
    finally:
        budget.give_back(size)
