"""KServe's V1 protocol: `POST /v1/models/{name}:predict`, `{"instances": [...]}` in,
`{"predictions": [...]}` out, in the order of the instances. Its `:explain` verb is answered
404 with where the explanation is: in every prediction.

An instance is a text, or an object with a `text`; a prediction is the same per-text object as
/v1's (label, score, probabilities, tokens with their offsets and attention, truncated). Every
non-200 answer of this route is KServe's `{"error": "<message>"}`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag
from pydantic_core import to_json

from attnserve.service.errors import NotFound, ServiceError
from attnserve.service.predictions import Predictions
from attnserve.service.routes import Registry, answered, error_responses
from attnserve.service.schemas import InputText, Prediction, text_or
from attnserve.service.v1_json import prediction_objects

# The paths whose errors take KServe's shape.
PATH_PATTERN = r"/v1/models/[^/]+:(predict|explain)"


class TextInstance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: InputText


# A text, or an object with a `text`; anything else is refused with one plain message.
Instance = Annotated[
    Annotated[InputText, Tag("text")] | Annotated[TextInstance, Tag("object")],
    Discriminator(
        text_or("object", (dict, TextInstance)),
        custom_error_type="invalid_instance",
        custom_error_message="An instance must be a text, or an object with a 'text'",
    ),
]


class InstancesRequest(BaseModel):
    """KServe v1's request: the texts to classify."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"instances": ["Loved it!", {"text": "Awful."}]}]},
    )

    instances: list[Instance] = Field(
        min_length=1,
        description="Texts, or objects with a `text` (at most `max_texts_per_request`).",
    )

    def texts(self) -> list[str]:
        return [item if isinstance(item, str) else item.text for item in self.instances]


class PredictionsResponse(BaseModel):
    """One prediction per instance, in their order."""

    predictions: list[Prediction]


class KServeErrorBody(BaseModel):
    """The body of every non-200 answer of KServe's v1 route."""

    error: str


def kserve_error_body(error: ServiceError) -> dict[str, Any]:
    return {"error": error.message}


async def predictions_json(predictions: Predictions) -> bytes:
    return to_json({"predictions": prediction_objects(predictions)})


router = APIRouter(tags=["kserve v1"])


@router.post(
    "/v1/models/{name}:predict",
    response_model=PredictionsResponse,
    responses=error_responses(KServeErrorBody, 404, 413, 422, 503),
)
async def kserve_predict(
    name: str, body: InstancesRequest, registry: Registry, request: Request
) -> Response:
    """Classify `instances` with the named model (KServe's V1 protocol)."""
    predictions = await registry.get(name).predict(body.texts())
    return await answered(predictions, request, predictions_json)


@router.post(
    "/v1/models/{name}:explain",
    status_code=404,
    response_model=KServeErrorBody,
    responses=error_responses(KServeErrorBody, 404),
)
async def kserve_explain(name: str) -> Response:
    """Not served: `:predict` answers each text's explanation, its words' attention."""
    raise NotFound(
        f"KServe's :explain is not served. Each prediction of POST /v1/models/{name}:predict "
        "carries its explanation: every word's attention with its character offsets (tokens)."
    )


# The routes that run a model (admission refuses them while its queue is full).
INFERENCE_ENDPOINTS = (kserve_predict,)
