"""The HTTP server: uvicorn with the service's connection bounds and drain
(service/connections.py), in one process or several.

On SIGTERM uvicorn stops listening, lets requests under way finish within
`shutdown_grace_s`, and each idle connection's already-sent request is answered first. A gRPC
server beside it (service/grpc/) stops taking calls at the same moment, and its calls in flight
finish within the same grace period.
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from starlette.types import ASGIApp
from uvicorn.supervisors import Multiprocess

from attnserve.service.app import uvicorn_log_config
from attnserve.service.connections import ConnectionLimits, bounded_protocol, connection_cap
from attnserve.service.grpc.server import GrpcServer
from attnserve.service.settings import Settings

# Each worker process builds its app from the environment with this factory.
APP_FACTORY = "attnserve.service.app:create_app"


def run_server(
    app: ASGIApp | None,
    settings: Settings,
    workers: int = 1,
    grpc_server: GrpcServer | None = None,
) -> bool:
    """Serves `app` (None: `workers` processes, each building its own) until a signal stops
    it, on its port and, when set, on the probe port; False when it never started.
    `grpc_server`, the app's, starts draining with HTTP (under workers, each process's drains
    once HTTP has)."""
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
    server = _Server(config, grpc_server)
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


class _Server(uvicorn.Server):
    """Uvicorn's server, draining the app's gRPC server alongside HTTP."""

    def __init__(self, config: uvicorn.Config, grpc_server: GrpcServer | None) -> None:
        super().__init__(config)
        self.grpc_server = grpc_server

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # gRPC stops taking calls now too; the app's lifespan awaits the end of its drain
        # before the models close.
        grpc = self.grpc_server
        grpc_drain = None if grpc is None else asyncio.create_task(grpc.stop())
        await super().shutdown(sockets)
        if grpc_drain is not None:
            await grpc_drain
