"""Uvicorn's server with a drain step: on SIGTERM it stops listening, lets the connections it
already accepted deliver their requests, then finishes them within the grace period.

Uvicorn alone closes the listener and, in the same instant, every connection with no request
parsed yet, including one whose request bytes are still in its socket buffer: that client
sees its request dropped unanswered. Pausing between the two steps closes that window.
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn

# How long accepted connections have to deliver their requests once the listener is closed.
ACCEPTED_LINGER_S = 0.5


class DrainingServer(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new connections from here on
        await asyncio.sleep(ACCEPTED_LINGER_S)
        await super().shutdown(sockets)  # then uvicorn's own drain, within the grace period
