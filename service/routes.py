"""HTTP routes: each validates its input, calls one method, returns a typed response."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from attnserve.service.errors import ModelNotReady
from attnserve.service.metrics import CONTENT_TYPE, Metrics, record_prediction
from attnserve.service.predictions import Predictions
from attnserve.service.registry import ModelRegistry
from attnserve.service.schemas import (
    ErrorBody,
    Health,
    ModelInfo,
    ModelList,
    PredictRequest,
    PredictResponse,
    Readiness,
)
from attnserve.service.v1_json import encoded_off_the_loop


async def _registry(request: Request) -> ModelRegistry:
    # async: a plain `def` dependency would cost a thread-pool hop on every request.
    registry: ModelRegistry | None = getattr(request.app.state, "registry", None)
    if registry is None:
        raise ModelNotReady()
    return registry


Registry = Annotated[ModelRegistry, Depends(_registry)]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return error_responses(ErrorBody, *statuses)


def error_responses(body: type[BaseModel], *statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route whose errors have the shape `body`."""
    return {status: {"model": body} for status in statuses}


router = APIRouter()
_PREDICT_ERRORS = _errors(404, 413, 422, 503)


@router.post(
    "/v1/predict", response_model=PredictResponse, responses=_PREDICT_ERRORS, tags=["predict"]
)
async def predict(body: PredictRequest, registry: Registry, request: Request) -> Response:
    """Classify the sentiment of `text` or `texts` with the default model."""
    predictions = await registry.get().predict(body.all_texts(), body.detail)
    return await answered(predictions, request, encoded_off_the_loop)


@router.post(
    "/v1/models/{name}/predict",
    response_model=PredictResponse,
    responses=_PREDICT_ERRORS,
    tags=["predict"],
)
async def predict_with(
    name: str, body: PredictRequest, registry: Registry, request: Request
) -> Response:
    """Classify the sentiment of `text` or `texts` with the named model."""
    predictor = registry.get(name)
    predictions = await predictor.predict(body.all_texts(), body.detail)
    return await answered(predictions, request, encoded_off_the_loop)


# The routes that run a model (admission refuses them while its queue is full).
INFERENCE_ENDPOINTS = (predict, predict_with)


@router.get("/v1/models", responses=_errors(503), tags=["models"])
async def list_models(registry: Registry) -> ModelList:
    """List the served models and the default one."""
    return registry.list_models()


@router.get("/v1/models/{name}", responses=_errors(404, 503), tags=["models"])
async def describe_model(name: str, registry: Registry) -> ModelInfo:
    """Describe one model: labels, limits, metrics, parity and the provider running it."""
    return registry.get(name).info


@router.get("/healthz", tags=["health"])
async def healthz() -> Health:
    """Liveness: the process answers."""
    return Health()


@router.get("/readyz", responses=_errors(503), tags=["health"])
async def readyz(registry: Registry, request: Request) -> Readiness:
    """Readiness: the models are loaded and verified (every one, or at least one: the policy)."""
    registry.check_ready(request.app.state.settings.readiness)
    return Readiness()


@router.get("/metrics", tags=["health"], response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics: requests, latency, per-stage time, batch sizes, texts, tokens, models."""
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.exposition(), media_type=CONTENT_TYPE)


async def answered(
    predictions: Predictions,
    request: Request,
    encode: Callable[[Predictions], Awaitable[bytes]],
) -> Response:
    """The JSON response `encode` makes, with its stages' times in `Server-Timing` and in the
    metrics."""
    # Our own response, encoded once: FastAPI would otherwise validate it against
    # `response_model` and encode it in Python.
    start = time.perf_counter()
    body = await encode(predictions)
    timings = predictions.timings.plus_postprocess((time.perf_counter() - start) * 1000.0)
    record_prediction(request, predictions, timings)
    return Response(
        body, media_type="application/json", headers={"Server-Timing": timings.server_timing()}
    )
