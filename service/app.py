"""The FastAPI application: `create_app(settings)` builds it; its lifespan loads the models.

Run it with `attnserve serve`, or `uvicorn --factory attnserve.service.app:create_app`.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from attnserve.service import kserve_v1, routes, text_classification
from attnserve.service.admission import Admission
from attnserve.service.auth import ApiKeys, configured_digests
from attnserve.service.docs import install_docs
from attnserve.service.error_responses import ErrorResponder, install_error_handlers
from attnserve.service.errors import StartupError
from attnserve.service.gateway import Gateway
from attnserve.service.grpc.server import GrpcServer
from attnserve.service.metrics import Metrics
from attnserve.service.oip import routes as oip_routes
from attnserve.service.oip.schemas import protocol_error_body
from attnserve.service.page import install_page
from attnserve.service.registry import ModelRegistry
from attnserve.service.request_id import RequestIdFilter
from attnserve.service.settings import Settings

logger = logging.getLogger(__name__)

# The modules of HTTP routes: each has a `router` and the `INFERENCE_ENDPOINTS` that run a model.
# KServe's `/v1/models/{name}:predict` comes before `/v1/models/{name}`, whose `{name}` matches
# `x:predict` too: a wrong method on it is then answered 405 with `Allow: POST`, not `GET`.
ROUTE_MODULES = (kserve_v1, routes, oip_routes, text_classification)

# Attributes every LogRecord has; anything else was passed in `extra` and is a field, except
# uvicorn's `color_message`, the same event with terminal colour codes in it.
_RECORD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service, configured by `settings` (default: read from ATTNSERVE_* variables)."""
    settings = settings if settings is not None else Settings()
    configure_logging(settings.log_level)
    metrics = Metrics()
    grpc_server = GrpcServer(settings, metrics) if settings.grpc_port is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            app.state.registry = ModelRegistry.load(settings, metrics.observe_batch)
            if grpc_server is not None:
                await grpc_server.start(app.state.registry)
        except StartupError as exc:
            logger.error("startup_failed", extra={"reason": str(exc)})
            raise
        metrics.observe_models(app.state.registry)
        logger.info(
            "ready",
            extra={
                "models": app.state.registry.names,
                "default_model": app.state.registry.default_model,
                "unavailable": sorted(app.state.registry.unavailable),
            },
        )
        # What startup built lives as long as the service: out of the collector's sight, a
        # full collection stops the event loop for under a millisecond instead of about 40.
        gc.freeze()
        yield
        gc.unfreeze()
        if grpc_server is not None:
            await grpc_server.stop()
        registry, app.state.registry = app.state.registry, None
        metrics.observe_models(None)
        metrics.close()
        await registry.close()
        logger.info("stopped")

    app = FastAPI(
        title="attnserve",
        summary="Sentiment of text, with the per-token attention behind each prediction.",
        version="0.1.0",
        lifespan=lifespan,
        # Starlette builds a redirect's absolute URL from the Host header the client sent
        redirect_slashes=False,
        docs_url=None,  # install_docs serves them offline
        redoc_url=None,
    )
    app.state.registry = None
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.grpc_server = grpc_server
    for module in ROUTE_MODULES:
        app.include_router(module.router)
    install_page(app)
    install_docs(app)
    # each protocol's routes answer errors in its own shape
    responder = ErrorResponder(
        {
            r"/v2(/.*)?": protocol_error_body,
            kserve_v1.PATH_PATTERN: kserve_v1.kserve_error_body,
            text_classification.PATH: text_classification.classification_error_body,
        }
    )
    install_error_handlers(app, responder)
    add_gateway(app, settings, metrics, responder)
    return app


def add_gateway(
    app: FastAPI, settings: Settings, metrics: Metrics, responder: ErrorResponder
) -> None:
    """The one ASGI layer every request crosses (service/gateway.py): request id, answer
    headers, metrics and log, CORS, API key, deadline, admission, body limit, internal errors;
    the predict routes answered there directly."""
    inference = [
        route
        for module in ROUTE_MODULES
        for route in module.router.routes
        if isinstance(route, APIRoute) and route.endpoint in module.INFERENCE_ENDPOINTS
    ]
    digests = configured_digests(settings)
    app.add_middleware(
        Gateway,
        metrics=metrics,
        responder=responder,
        registry=lambda: app.state.registry,
        admission=Admission(inference),
        predict_routes=[route for route in inference if route in routes.router.routes],
        max_body_bytes=settings.max_body_bytes,
        max_buffered_body_bytes=settings.max_buffered_body_bytes,
        max_connections=settings.max_connections,
        timeout_s=settings.request_timeout_s,
        gzip_min_bytes=settings.gzip_min_bytes,
        max_heads_in_flight=settings.max_heads_in_flight,
        api_keys=ApiKeys(digests) if digests else None,
        cors_origins=settings.cors_origins,
    )


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        line.update((k, v) for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str) -> None:
    """Sends the `service` loggers' events to stderr as JSON lines (idempotent), and Python's
    warnings to logging (which `uvicorn_log_config` writes as JSON lines too).

    Events logged while a request is answered carry its `request_id`.
    """
    logging.captureWarnings(True)
    root = logging.getLogger("attnserve")
    root.setLevel(level.upper())
    if not any(isinstance(h.formatter, JsonLineFormatter) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonLineFormatter())
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    root.propagate = False


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """uvicorn's `log_config`: its own lines (startup, shutdown, errors, access when on) and
    Python's warnings, to stderr as JSON lines like the service's, in every worker process."""
    handler = {"handlers": ["json"], "level": level.upper(), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonLineFormatter}},
        "filters": {"request_id": {"()": RequestIdFilter}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        # uvicorn.error logs through `uvicorn`, as in uvicorn's own configuration
        "loggers": {"uvicorn": handler, "uvicorn.access": handler, "py.warnings": handler},
    }
