"""The Hugging Face text-classification shape on `POST /predict` (the path of Text Embeddings
Inference's classifier route), for the `huggingface_hub` InferenceClient and scripts written
against the Hugging Face Inference API:

    {"inputs": "text" | ["text", ...], "parameters": {"top_k": 2}}
    -> [[{"label": "positive", "score": 0.98, "tokens": [...], "truncated": false,
          "readable": 1.0, "unreadable": false},
         {"label": "negative", "score": 0.02}], ...]

One list per text (a single text too), its labels sorted by score, all of them unless
`top_k`. The first entry of each list, the predicted label, also carries what the shape has
no field for: `tokens` (each word's text, character offsets and attention), `truncated`,
`readable` and `unreadable`, as in /v1; clients of the shape read `label` and `score` and keep
or ignore the rest.
Errors on this path are `{"error": "<message>", "error_type": "<code>"}`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag
from pydantic_core import to_json

from attnserve.service.errors import InvalidRequest, ServiceError
from attnserve.service.predictions import Predictions
from attnserve.service.routes import Registry, answered, error_responses
from attnserve.service.schemas import InputText, Token, text_or
from attnserve.service.v1_json import token_objects

PATH = "/predict"


class ClassificationParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    top_k: int | None = Field(
        default=None, ge=1, description="Only the k most probable labels (default: all)."
    )
    function_to_apply: Literal["softmax", "sigmoid", "none"] | None = Field(
        default=None,
        description="`softmax` (the default) only: the models output probabilities, a softmax "
        "over their labels, and no logits to apply `sigmoid` or `none` to.",
    )


# One text or a list of them; anything else is refused with one plain message.
Inputs = Annotated[
    Annotated[InputText, Tag("text")]
    | Annotated[list[InputText], Tag("texts"), Field(min_length=1)],
    Discriminator(
        text_or("texts", list),
        custom_error_type="invalid_inputs",
        custom_error_message="'inputs' must be a text or a list of texts",
    ),
]


class ClassificationRequest(BaseModel):
    """The text or texts to classify with the default model."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"inputs": "Loved it!"},
                {"inputs": ["Great.", "Awful."], "parameters": {"top_k": 1}},
            ]
        },
    )

    inputs: Inputs = Field(description="One text, or several (at most `max_texts_per_request`).")
    parameters: ClassificationParameters | None = None

    def texts(self) -> list[str]:
        return [self.inputs] if isinstance(self.inputs, str) else list(self.inputs)


class LabelScore(BaseModel):
    """One label and its probability; the first of a list also has the text's tokens."""

    label: str
    score: float
    tokens: list[Token] | None = Field(
        default=None, description="On the first (most probable) entry only: as in /v1."
    )
    truncated: bool | None = Field(
        default=None, description="On the first entry only: the text had more than max_tokens."
    )
    readable: float | None = Field(
        default=None,
        description="On the first entry only: the share of the text's words the model knows, "
        "as in /v1.",
    )
    unreadable: bool | None = Field(
        default=None,
        description="On the first entry only: the model knew none of the text's words (the "
        "label is then a guess), as in /v1.",
    )


class ClassificationErrorBody(BaseModel):
    """The body of every non-200 answer of /predict."""

    error: str
    error_type: str = Field(description="attnserve's error code, e.g. `text_too_long`.")


def classification_error_body(error: ServiceError) -> dict[str, Any]:
    return {"error": error.message, "error_type": error.code}


def label_scores_json(predictions: Predictions, top_k: int | None) -> bytes:
    """Each text's labels by descending score (the first `top_k`), tokens and what was read
    on the first."""
    labels = predictions.labels
    unreadable = predictions.unreadable
    answers = []
    for row, probabilities in enumerate(predictions.probabilities.tolist()):
        # stable: labels of equal score keep their order, so the first is the predicted one
        ranked = sorted(range(len(labels)), key=lambda column: -probabilities[column])
        entries: list[dict[str, Any]] = [
            {"label": labels[column], "score": probabilities[column]} for column in ranked[:top_k]
        ]
        entries[0]["tokens"] = token_objects(predictions.texts[row], predictions.words[row])
        entries[0]["truncated"] = predictions.truncated[row]
        entries[0]["readable"] = predictions.readable[row]
        entries[0]["unreadable"] = unreadable[row]
        answers.append(entries)
    return to_json(answers)


router = APIRouter(tags=["text classification"])


@router.post(
    PATH,
    response_model=list[list[LabelScore]],
    response_model_exclude_none=True,
    responses=error_responses(ClassificationErrorBody, 413, 422, 503),
)
async def classify(body: ClassificationRequest, registry: Registry, request: Request) -> Response:
    """Classify `inputs` with the default model, in the Hugging Face text-classification shape."""
    parameters = body.parameters or ClassificationParameters()
    if parameters.function_to_apply not in (None, "softmax"):
        raise InvalidRequest(
            f"function_to_apply '{parameters.function_to_apply}' cannot be applied: the models "
            "output probabilities (a softmax over their labels), not logits. Send 'softmax' or "
            "leave it out."
        )
    predictions = await registry.get().predict(body.texts())

    async def encoded(answer: Predictions) -> bytes:
        return label_scores_json(answer, parameters.top_k)

    return await answered(predictions, request, encoded)


# The routes that run a model (admission refuses them while its queue is full).
INFERENCE_ENDPOINTS = (classify,)
