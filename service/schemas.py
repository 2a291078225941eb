"""What goes over the wire: request bodies in, responses out, and the one error body."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from attnserve.artifact.manifest import (
    CalibrationRecord,
    FaithfulnessRecord,
    ParityRecord,
    TensorSpec,
)

_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_lone_surrogates(text: str) -> str:
    """JSON may escape a lone surrogate (`"\\ud800"`), which is not a character: refuse it."""
    found = _SURROGATE.search(text)
    if found:
        raise PydanticCustomError(
            "lone_surrogate",
            "Text has a lone surrogate U+{code} at index {index}, which is not a Unicode "
            "character; send text as valid UTF-8 (a \\u escape pair must be high then low)",
            {"code": f"{ord(found.group()):04X}", "index": found.start()},
        )
    return text


InputText = Annotated[str, AfterValidator(_no_lone_surrogates)]


def text_or(tag: str, kinds: type | tuple[type, ...]) -> Callable[[Any], str | None]:
    """For a pydantic `Discriminator` between a text (tagged `text`) and a value of `kinds`
    (tagged `tag`); anything else (None) is refused with the discriminator's own message."""

    def kind(value: Any) -> str | None:
        if isinstance(value, str):
            return "text"
        return tag if isinstance(value, kinds) else None

    return kind


class PredictRequest(BaseModel):
    """Exactly one of `text` or `texts`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"text": "Loved it!"}, {"texts": ["Great.", "Awful."]}]},
    )

    text: InputText | None = Field(default=None, description="One text to classify.")
    texts: list[InputText] | None = Field(
        default=None,
        min_length=1,
        description="Several texts, answered in the same order (at most `max_texts_per_request`).",
    )

    detail: Literal["heads", "pieces"] | None = Field(
        default=None,
        description="`heads`: also return every layer's and head's self-attention map over "
        "the text's tokens, for models that have them (`GET /v1/models` lists `heads` among "
        "their outputs). `pieces`: also return the attention over the pieces the model read "
        "(word pieces, for a word-piece model; the tokens themselves, for a word-level one).",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> PredictRequest:
        if (self.text is None) == (self.texts is None):
            raise PydanticCustomError("text_or_texts", "Give exactly one of 'text' or 'texts'.")
        return self

    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


class Token(BaseModel):
    """One token: `text == input[start:end]`, and its attention weight."""

    text: str
    start: int = Field(description="Offset of the first character, in the input text.")
    end: int = Field(description="Offset one past the last character.")
    attention: float | None = Field(
        description="Weight of this token; weights sum to 1 over a text's tokens. "
        "Null for a model without attention."
    )


class Prediction(BaseModel):
    """The answer for one text."""

    label: str
    score: float = Field(description="Probability of `label`.")
    probabilities: dict[str, float] = Field(description="Label -> probability.")
    tokens: list[Token]
    truncated: bool = Field(description="True when the text had more than max_tokens tokens.")
    readable: float = Field(
        description="Share of the text's words the model knows, 0 to 1: a word it reads only "
        "as its unknown token (an emoji, a script its vocabulary never saw) is not read."
    )
    unreadable: bool = Field(
        description="True when the model knew none of the text's words (`readable` is 0): "
        "the label is then a guess, whatever its score."
    )
    heads: list[list[list[list[float]]]] | None = Field(
        default=None,
        description="Only with `detail: heads`: [layer][head][query token][key token] "
        "self-attention weights over the text's tokens; each row sums to 1.",
    )
    pieces: list[Token] | None = Field(
        default=None,
        description="Only with `detail: pieces`: the pieces the model read, in order, special "
        "tokens left out, each with its span of the input and its own weight; `tokens` are "
        "these summed into words. A piece's span is its word's part (`##ing`: `ing`), and "
        "pieces of one character (an emoji read as several bytes) share its span.",
    )


class PredictResponse(BaseModel):
    """Predictions in the order of the request's texts."""

    model: str
    version: str
    predictions: list[Prediction]


class ModelInfo(BaseModel):
    """The public part of a model's manifest, and the execution provider serving it."""

    name: str
    version: str
    architecture: str
    description: str
    labels: list[str]
    max_tokens: int
    has_attention: bool
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    metrics: dict[str, float]
    parity: ParityRecord
    faithfulness: FaithfulnessRecord | None = Field(
        description="How far to trust the highlights: comprehensiveness of the most attended "
        "tokens against random and gradient x input ones, on the test split."
    )
    calibration: CalibrationRecord | None = Field(
        default=None,
        description="The temperature every answer's probabilities are scaled by, fitted on "
        "the validation split, and the expected calibration error (10 bins) before and after "
        "on validation and test; null: the graph's probabilities are served as they are.",
    )
    created_at: str
    provider: str = Field(description="ONNX Runtime execution provider in use, e.g. CPU.")


class UnavailableModel(BaseModel):
    """A model whose artifact failed verification at startup: not served, and why."""

    name: str
    version: str = Field(description="The version that failed; empty when none is usable.")
    reason: str = Field(description="What failed, e.g. `tokenizer.json is missing`.")


class ModelList(BaseModel):
    """Every served model, which one answers `POST /v1/predict`, and any that are broken."""

    default_model: str
    models: list[ModelInfo]
    unavailable: list[UnavailableModel] = Field(default_factory=list)


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready"] = "ready"


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable snake_case identifier, e.g. `text_too_long`.")
    message: str = Field(description="What went wrong, for a person.")
    details: dict[str, Any] | None = Field(description="Figures behind the message, if any.")


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorInfo
