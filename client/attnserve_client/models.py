"""What the service answers, typed. Fields the service adds later are ignored, not refused."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Token(BaseModel):
    """One token: `text == input[start:end]` (character offsets), and its attention weight."""

    text: str
    start: int
    end: int
    attention: float | None  # None for a model without attention


class Prediction(BaseModel):
    """The answer for one text."""

    label: str
    score: float  # probability of `label`
    probabilities: dict[str, float]
    tokens: list[Token]
    truncated: bool  # the text had more tokens than the model reads; only the first were read
    # the share of the text's words the model knows (not read as its unknown token), and
    # whether it knew none of them (its label is then a guess); None from an older server
    readable: float | None = None
    unreadable: bool = False
    # [layer][head][token][token] self-attention maps: only when a request asks for
    # "detail": "heads" (this client does not), from a model that has them
    heads: list[list[list[list[float]]]] | None = None
    # the pieces the model read (word pieces, for a word-piece model), with their spans and
    # weights: only when a request asks for "detail": "pieces" (this client does not)
    pieces: list[Token] | None = None


class PredictResponse(BaseModel):
    """Predictions in the order of the texts sent, and the model that made them."""

    model: str
    version: str
    predictions: list[Prediction]


class ModelInfo(BaseModel):
    """A served model, as GET /v1/models describes it."""

    name: str
    version: str
    architecture: str
    description: str
    labels: list[str]  # the model's classes, in the order of its probabilities
    max_tokens: int
    has_attention: bool
    metrics: dict[str, float]  # e.g. test_accuracy
    # how far to trust the highlights (absent for models exported before it was measured)
    faithfulness: dict[str, Any] | None = None
    provider: str  # the ONNX Runtime execution provider serving it


class UnavailableModel(BaseModel):
    """A model the server could not load, and why."""

    name: str
    version: str
    reason: str


class ModelList(BaseModel):
    """What GET /v1/models says: the served models, the default one, the broken ones."""

    default_model: str
    models: list[ModelInfo]
    unavailable: list[UnavailableModel] = []
