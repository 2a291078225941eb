"""The HTTP server: uvicorn with the service's connection bounds and drain
(service/connections.py), in one process or several.

On SIGTERM uvicorn stops listening, lets requests under way finish within
`shutdown_grace_s`, and each idle connection's already-sent request is answered first.
"""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp
from uvicorn.supervisors import Multiprocess

from attnserve.service.app import uvicorn_log_config
from attnserve.service.connections import ConnectionLimits, bounded_protocol, connection_cap
from attnserve.service.settings import Settings

# Each worker process builds its app from the environment with this factory.
APP_FACTORY = "attnserve.service.app:create_app"


def run_server(app: ASGIApp | None, settings: Settings, workers: int = 1) -> bool:
    """Serves `app` (None: `workers` processes, each building its own) until a signal stops
    it; False when it never started (its startup failed)."""
    limits = ConnectionLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout_s=settings.header_timeout_s,
        max_connections=connection_cap(settings.max_connections),
    )
    config = uvicorn.Config(
        app if app is not None else APP_FACTORY,
        factory=app is None,
        workers=workers,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=uvicorn_log_config(settings.log_level),
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        timeout_keep_alive=int(settings.keep_alive_s) or 1,
        http=bounded_protocol(limits),
    )
    if app is None:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return True
    server = uvicorn.Server(config)
    server.run()
    return server.started
