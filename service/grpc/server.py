"""The gRPC server: started by the app's lifespan once the models are loaded, on
`settings.host:settings.grpc_port`, and drained on shutdown like the HTTP server.

It runs in the HTTP server's process and event loop, over the same registry: the same
batchers merge texts from both protocols. Each `attnserve serve --workers` process serves the
port too (gRPC listens with SO_REUSEPORT, so the kernel spreads connections over them).
"""

from __future__ import annotations

import asyncio
import logging

import grpc

from attnserve.service.auth import ApiKeys, configured_digests
from attnserve.service.errors import StartupError
from attnserve.service.grpc.servicer import InferenceServicer
from attnserve.service.metrics import Metrics
from attnserve.service.registry import ModelRegistry
from attnserve.service.settings import Settings

logger = logging.getLogger(__name__)


class GrpcServer:
    """Serves `inference.GRPCInferenceService`; `port` is the one it listens on once started."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.port: int | None = None
        self._server: grpc.aio.Server | None = None
        self._stopped: asyncio.Future[None] | None = None

    async def start(self, registry: ModelRegistry) -> None:
        """Listens and serves; StartupError when the port cannot be had."""
        settings = self.settings
        digests = configured_digests(settings)
        servicer = InferenceServicer(
            registry,
            self.metrics,
            readiness=settings.readiness,
            timeout_s=settings.request_timeout_s,
            api_keys=ApiKeys(digests) if digests else None,
        )
        server = grpc.aio.server(
            # a message over the HTTP body limit is refused RESOURCE_EXHAUSTED before parsing
            options=[("grpc.max_receive_message_length", settings.max_body_bytes)]
        )
        server.add_generic_rpc_handlers((servicer.handler(),))
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        address = f"{host}:{settings.grpc_port}"
        try:
            self.port = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise StartupError(f"gRPC cannot listen on {address}: {exc}") from exc
        await server.start()
        self._server = server
        logger.info("grpc_listening", extra={"host": settings.host, "port": self.port})

    async def stop(self) -> None:
        """Stops taking calls and lets those in flight finish within the shutdown grace period
        (then cuts them). Called again, or while stopping, it waits for the same drain."""
        if self._server is None:
            return
        if self._stopped is None:
            self._stopped = asyncio.ensure_future(self._server.stop(self.settings.shutdown_grace_s))
        await asyncio.shield(self._stopped)
