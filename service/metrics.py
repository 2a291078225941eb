"""Prometheus metrics: what `GET /metrics` exposes, and the middleware that counts requests.

Each app owns a `Metrics` (its own collector registry), so apps built side by side (tests)
count separately. Labels are bounded: `route` is the route's template, `model` a served
model's name or empty, `status` the HTTP status.
"""

from __future__ import annotations

import os
import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attnserve.service.predictions import Predictions, Timings
from attnserve.service.registry import ModelRegistry
from attnserve.service.route_label import route_template

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds: a prediction on CPU takes about a millisecond, a large batch a second or more.
_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
_STAGE_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5,
)  # fmt: skip
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_TOKEN_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

# Where a route tells the middleware which model answered: request.state.<MODEL_STATE>.
MODEL_STATE = "model"


class Metrics:
    """The service's metrics, in one registry; `exposition()` is the body of GET /metrics."""

    def __init__(self) -> None:
        # No `_created` series: Prometheus ignores them in the text format; they double the page.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        # Several server processes (workers) behind one port must count together: with
        # PROMETHEUS_MULTIPROC_DIR set (before the processes start, as prometheus-client
        # requires), each writes its values there and every scrape sums them all.
        self.exposed = self.registry
        multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if multiprocess_dir:
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed, path=multiprocess_dir)  # type: ignore[no-untyped-call]
        self.requests = Counter(
            "attnserve_requests",
            "HTTP requests answered, by route template, model and status.",
            ["route", "model", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "attnserve_request_duration_seconds",
            "Time from a request's arrival to the end of its response, in seconds.",
            ["route", "model", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "attnserve_stage_duration_seconds",
            "Time a prediction spent in each stage (tokenize, queue, inference, postprocess).",
            ["model", "stage"],
            buckets=_STAGE_BUCKETS,
            registry=self.registry,
        )
        self.request_texts = Histogram(
            "attnserve_request_texts",
            "Texts in one prediction request.",
            ["model"],
            buckets=_SIZE_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "attnserve_batch_size",
            "Texts in one batch run by ONNX Runtime.",
            ["model"],
            buckets=_SIZE_BUCKETS,
            registry=self.registry,
        )
        self.text_tokens = Histogram(
            "attnserve_text_tokens",
            "Tokens read from one text (after truncation to the model's max_tokens).",
            ["model"],
            buckets=_TOKEN_BUCKETS,
            registry=self.registry,
        )
        self.texts = Counter(
            "attnserve_texts",
            "Texts classified.",
            ["model"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "attnserve_tokens",
            "Tokens read by the models.",
            ["model"],
            registry=self.registry,
        )
        self.truncated = Counter(
            "attnserve_truncated_texts",
            "Texts longer than the model's max_tokens, of which only the first tokens were read.",
            ["model"],
            registry=self.registry,
        )
        self.models_loaded = Gauge(
            "attnserve_models_loaded",
            "Models loaded, verified and served.",
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.model_info = Gauge(
            "attnserve_model_info",
            "1 for each served model, with its version, architecture and execution provider.",
            ["model", "version", "architecture", "provider"],
            registry=self.registry,
            multiprocess_mode="max",
        )

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.exposed)

    def observe_models(self, registry: ModelRegistry | None) -> None:
        """Records the served models (None: none, e.g. after shutdown)."""
        self.model_info.clear()
        served = registry.served() if registry is not None else []
        self.models_loaded.set(len(served))
        for predictor in served:
            info = predictor.info
            self.model_info.labels(info.name, info.version, info.architecture, info.provider).set(1)

    def observe_prediction(self, predictions: Predictions, timings: Timings) -> None:
        """Records one answered prediction request: its stages, texts and tokens."""
        model = predictions.model
        for stage, milliseconds in timings.stages().items():
            self.stage_seconds.labels(model, stage).observe(milliseconds / 1000.0)
        texts = len(predictions.texts)
        self.request_texts.labels(model).observe(texts)
        self.texts.labels(model).inc(texts)
        for count in predictions.token_counts:
            self.text_tokens.labels(model).observe(count)
        self.tokens.labels(model).inc(sum(predictions.token_counts))
        truncated = sum(predictions.truncated)
        if truncated:
            self.truncated.labels(model).inc(truncated)

    def observe_batch(self, model: str, size: int) -> None:
        """Records one batch handed to ONNX Runtime (merged batches counted as run)."""
        self.batch_size.labels(model).observe(size)


def record_prediction(request: Request, predictions: Predictions, timings: Timings) -> None:
    """Counts an answered prediction in the app's metrics (with its stages' final `timings`),
    and its model in the request's labels."""
    metrics: Metrics = request.app.state.metrics
    metrics.observe_prediction(predictions, timings)
    setattr(request.state, MODEL_STATE, predictions.model)


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request by route, model and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # an exception escaping the app is answered 500 further out

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            labels = (route_template(scope), _model(scope), str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.request_seconds.labels(*labels).observe(time.perf_counter() - start)


def _model(scope: Scope) -> str:
    """The model that answered (set by the route), or the served model named in the path."""
    state = scope.get("state") or {}
    if isinstance(state.get(MODEL_STATE), str):
        return str(state[MODEL_STATE])
    name = (scope.get("path_params") or {}).get("name")
    registry = getattr(getattr(scope.get("app"), "state", None), "registry", None)
    if isinstance(registry, ModelRegistry) and isinstance(name, str) and registry.serves(name):
        return name
    return ""
