"""Prometheus metrics: what `GET /metrics` exposes; the gateway records every request.

Each app owns a `Metrics` (its own collector registry), so apps built side by side (tests)
count separately. Labels are bounded: `route` is the route's template, `model` a served
model's name or empty, `status` the HTTP status; gRPC calls are counted apart, by `method`,
`model` and `code` (the gRPC status code's name).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

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

from attnserve.service.predictions import STAGES, Predictions, Timings
from attnserve.service.registry import ModelRegistry
from attnserve.service.runtime_metrics import register_runtime_collectors

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

# Where a route tells the gateway which model answered: request.state.<MODEL_STATE>.
MODEL_STATE = "model"


@dataclass(frozen=True)
class _ModelSeries:
    """One model's labelled series, looked up once."""

    stages: list[Histogram]  # in the order of Timings.stages()
    request_texts: Histogram
    texts: Counter
    text_tokens: Histogram
    tokens: Counter
    truncated: Counter


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
        self.worker_copies = register_runtime_collectors(self.exposed, multiprocess_dir)
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
        self.grpc_requests = Counter(
            "attnserve_grpc_requests",
            "gRPC calls answered, by method, model and status code.",
            ["method", "model", "code"],
            registry=self.registry,
        )
        self.grpc_request_seconds = Histogram(
            "attnserve_grpc_request_duration_seconds",
            "Time from a gRPC call's arrival to its answer, in seconds.",
            ["method", "model", "code"],
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

        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._grpc_children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        self._by_model: dict[str, _ModelSeries] = {}

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format."""
        if self.worker_copies is not None:
            self.worker_copies.copy()
        return generate_latest(self.exposed)

    def observe_models(self, registry: ModelRegistry | None) -> None:
        """Records the served models (None: none, e.g. after shutdown)."""
        self.model_info.clear()
        served = registry.served() if registry is not None else []
        self.models_loaded.set(len(served))
        for predictor in served:
            info = predictor.info
            self.model_info.labels(info.name, info.version, info.architecture, info.provider).set(1)

    def observe_request(self, route: str, model: str, status: int, seconds: float) -> None:
        """Records one answered HTTP request (route template, model or "", status)."""
        key = (route, model, status)
        children = self._request_children.get(key)
        if children is None:
            labels = (route, model, str(status))
            children = self.requests.labels(*labels), self.request_seconds.labels(*labels)
            self._request_children[key] = children
        count, duration = children
        count.inc()
        duration.observe(seconds)

    def observe_prediction(self, predictions: Predictions, timings: Timings) -> None:
        """Records one answered prediction request: its stages, texts and tokens."""
        if self.worker_copies is not None:
            self.worker_copies.copy()
        series = self._model_series(predictions.model)
        for histogram, milliseconds in zip(series.stages, timings.stages().values(), strict=True):
            histogram.observe(milliseconds / 1000.0)
        texts = len(predictions.texts)
        series.request_texts.observe(texts)
        series.texts.inc(texts)
        for count in predictions.token_counts:
            series.text_tokens.observe(count)
        series.tokens.inc(sum(predictions.token_counts))
        truncated = sum(predictions.truncated)
        if truncated:
            series.truncated.inc(truncated)

    def _model_series(self, model: str) -> _ModelSeries:
        # Looking a labelled series up costs a lock and a dict per call: keep each model's.
        series = self._by_model.get(model)
        if series is None:
            series = self._by_model[model] = _ModelSeries(
                stages=[self.stage_seconds.labels(model, stage) for stage in STAGES],
                request_texts=self.request_texts.labels(model),
                texts=self.texts.labels(model),
                text_tokens=self.text_tokens.labels(model),
                tokens=self.tokens.labels(model),
                truncated=self.truncated.labels(model),
            )
        return series

    def close(self) -> None:
        """The process stops serving: under several workers, its per-worker series go."""
        if self.worker_copies is not None:
            self.worker_copies.close()

    def observe_grpc_call(self, method: str, model: str, code: str, seconds: float) -> None:
        """Records one answered gRPC call (`code`: its status code's name, e.g. OK)."""
        key = (method, model, code)
        children = self._grpc_children.get(key)
        if children is None:
            children = self.grpc_requests.labels(*key), self.grpc_request_seconds.labels(*key)
            self._grpc_children[key] = children
        count, duration = children
        count.inc()
        duration.observe(seconds)

    def observe_batch(self, model: str, size: int) -> None:
        """Records one batch handed to ONNX Runtime (merged batches counted as run)."""
        self.batch_size.labels(model).observe(size)


def record_prediction(request: Request, predictions: Predictions, timings: Timings) -> None:
    """Counts an answered prediction in the app's metrics (with its stages' final `timings`),
    and its model in the request's labels."""
    metrics: Metrics = request.app.state.metrics
    metrics.observe_prediction(predictions, timings)
    setattr(request.state, MODEL_STATE, predictions.model)
