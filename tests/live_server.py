"""The real app behind a real socket: uvicorn in a thread, on a free port of 127.0.0.1.

For clients that open their own connections (tritonclient, the Python client), which an
in-process test client cannot stand in for.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import uvicorn
from starlette.types import ASGIApp


@contextmanager
def serve(app: ASGIApp, lifespan: Literal["on", "off"] = "on") -> Iterator[str]:
    """Serves `app` until the block ends; yields its base URL, e.g. http://127.0.0.1:40123."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan=lifespan, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
