"""The known architectures by name: how to build each one and how to describe it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from models.classifiers import (
    BiLSTMAttentionClassifier,
    LSTMAttentionClassifier,
    LSTMClassifier,
    SentimentClassifier,
)
from models.config import ModelConfig


@dataclass(frozen=True)
class ArchitectureInfo:
    """A builder and the model-card line that the manifest carries."""

    builder: Callable[[ModelConfig], SentimentClassifier]
    description: str
    has_attention: bool


ARCHITECTURES: dict[str, ArchitectureInfo] = {
    "lstm": ArchitectureInfo(
        builder=LSTMClassifier,
        description=(
            "Unidirectional LSTM classifying from the last real token's hidden state; "
            "no attention (its attention output is all zeros)."
        ),
        has_attention=False,
    ),
    "lstm-additive": ArchitectureInfo(
        builder=LSTMAttentionClassifier,
        description=(
            "Unidirectional LSTM pooled by attention e_t = tanh(h_t.w + b), "
            "softmax over the real tokens."
        ),
        has_attention=True,
    ),
    "bilstm-additive": ArchitectureInfo(
        builder=BiLSTMAttentionClassifier,
        description=(
            "Bidirectional LSTM (backward pass from the last real token) pooled by "
            "additive attention score_t = v.tanh(W h_t + b)."
        ),
        has_attention=True,
    ),
}


def build_model(config: ModelConfig) -> SentimentClassifier:
    """A freshly initialised classifier of `config.architecture`."""
    info = ARCHITECTURES.get(config.architecture)
    if info is None:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {config.architecture!r}; known: {known}")
    return info.builder(config)
