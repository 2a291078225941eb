"""HTTP routes of the Open Inference Protocol: each translates HTTP and calls the data plane."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from attnserve.service.errors import InvalidInferenceRequest
from attnserve.service.metrics import record_prediction
from attnserve.service.oip import binary, dataplane
from attnserve.service.oip.schemas import (
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ModelReady,
    ProtocolErrorBody,
    ServerLive,
    ServerMetadata,
    ServerReady,
)
from attnserve.service.registry import ModelRegistry
from attnserve.service.routes import Registry


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ProtocolErrorBody} for status in statuses}


router = APIRouter(prefix="/v2", tags=["open inference protocol"])

_INFER_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": InferenceRequest.model_json_schema()},
            binary.BINARY_MEDIA_TYPE: {
                "schema": {"type": "string", "format": "binary"},
                "description": f"The JSON object, then binary tensors ({binary.HEADER} header).",
            },
        },
    }
}


@router.get("", responses=_errors(503))
async def server_metadata() -> ServerMetadata:
    """Server metadata: name, version and the protocol extensions supported."""
    return dataplane.server_metadata()


@router.get("/health/live")
async def server_live() -> ServerLive:
    """Liveness: the process answers."""
    return ServerLive()


@router.get("/health/ready", responses=_errors(503))
async def server_ready(registry: Registry, request: Request) -> ServerReady:
    """Readiness: the models are loaded and verified (every one, or at least one: the policy)."""
    registry.check_ready(request.app.state.settings.readiness)
    return ServerReady()


@router.get("/models/{name}", responses=_errors(404, 503))
async def model_metadata(name: str, registry: Registry) -> ModelMetadata:
    """The model's input and output tensors."""
    return dataplane.model_metadata(dataplane.predictor_for(registry, name, None))


@router.get("/models/{name}/versions/{version}", responses=_errors(404, 503))
async def model_version_metadata(name: str, version: str, registry: Registry) -> ModelMetadata:
    """The model's input and output tensors, at the given (served) version."""
    return dataplane.model_metadata(dataplane.predictor_for(registry, name, version))


@router.get("/models/{name}/ready", responses=_errors(404, 503))
async def model_ready(name: str, registry: Registry) -> ModelReady:
    """The model is loaded and verified."""
    return ModelReady(name=dataplane.predictor_for(registry, name, None).manifest.name)


@router.get("/models/{name}/versions/{version}/ready", responses=_errors(404, 503))
async def model_version_ready(name: str, version: str, registry: Registry) -> ModelReady:
    """The model is loaded and verified, at the given (served) version."""
    return ModelReady(name=dataplane.predictor_for(registry, name, version).manifest.name)


_INFER_ERRORS = _errors(400, 404, 413, 422, 503)


@router.post(
    "/models/{name}/infer",
    response_model=InferenceResponse,
    responses=_INFER_ERRORS,
    openapi_extra=_INFER_DOC,
)
async def infer(name: str, request: Request, registry: Registry) -> Response:
    """Classify a BYTES input of texts; tensors as JSON or binary (binary tensor data ext.)."""
    return await _infer(request, registry, name, None)


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_model=InferenceResponse,
    responses=_INFER_ERRORS,
    openapi_extra=_INFER_DOC,
)
async def infer_version(name: str, version: str, request: Request, registry: Registry) -> Response:
    """Classify with the given (served) version of the model."""
    return await _infer(request, registry, name, version)


# The routes that run a model (admission refuses them while its queue is full).
INFERENCE_ENDPOINTS = (infer, infer_version)


async def _infer(
    request: Request,
    registry: ModelRegistry,
    name: str,
    version: str | None,
) -> Response:
    predictor = dataplane.predictor_for(registry, name, version)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raise InvalidInferenceRequest(
            f"Content-Encoding '{encoding}' is not supported: send the body uncompressed."
        )
    answer = await dataplane.infer(
        predictor, await request.body(), request.headers.get(binary.HEADER)
    )
    timings = answer.predictions.timings
    record_prediction(request, answer.predictions, timings)
    return Response(
        answer.body, headers={**answer.headers, "Server-Timing": timings.server_timing()}
    )
