"""The HTTP server: uvicorn with the service's connection bounds and drain
(service/connections.py), in one process or several.

On SIGTERM uvicorn stops listening, lets requests under way finish within
`shutdown_grace_s`, and each idle connection's already-sent request is answered first.
"""

from __future__ import annotations

import socket

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
    it, on its port and, when set, on the probe port; False when it never started."""
    limits = ConnectionLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout_s=settings.header_timeout_s,
        max_connections=connection_cap(settings.max_connections),
        health_port=settings.health_port,
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
    sockets = [config.bind_socket()]
    if settings.health_port is not None:
        sockets.append(_listen(settings.host, settings.health_port))
    if app is None:
        Multiprocess(config, sockets=sockets).run()
        return True
    server = uvicorn.Server(config)
    server.run(sockets=sockets)
    return server.started


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port), as uvicorn binds its own."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
