"""What the service answers, typed. Fields the service adds later are ignored, not refused."""

from __future__ import annotations

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
    """A served model (the service tells more; see GET /v1/models)."""

    name: str
    version: str
    architecture: str
    labels: list[str]
    max_tokens: int
    has_attention: bool
