"""The known architectures by name: how to build each one and how to describe it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from models.classifiers import (
    BiLSTMAttentionClassifier,
    LSTMAttentionClassifier,
    LSTMClassifier,
    SentimentClassifier,
)
from models.config import ModelConfig
from models.luong import SCORES, luong_global, luong_local
from models.transformer import TransformerClassifier

Exporter = Literal["legacy", "dynamo"]


@dataclass(frozen=True)
class ArchitectureInfo:
    """A builder, the model-card line that the manifest carries, and how it exports.

    exporter: `legacy` (TorchScript; keeps an nn.LSTM's sequence axis dynamic) or `dynamo`
    (torch.export; needed where the legacy exporter bakes sequence-length reshapes in).
    has_heads: the model has `forward_detail` and `heads_shape` (per-layer, per-head maps),
    exported as the optional `heads` output.
    """

    builder: Callable[[ModelConfig], SentimentClassifier]
    description: str
    has_attention: bool
    exporter: Exporter = "legacy"
    has_heads: bool = False


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
    **{
        f"luong-global-{score}": ArchitectureInfo(
            builder=luong_global(score),
            description=(
                f"Bidirectional LSTM with Luong global attention, score '{score}' "
                f"({formula}), the encoder's final state as query q; "
                "classifies tanh(W_c [context; q])."
            ),
            has_attention=True,
        )
        for score, formula in SCORES.items()
    },
    "luong-local-monotonic": ArchitectureInfo(
        builder=luong_local(predictive=False),
        description=(
            "Bidirectional LSTM with Luong local-m attention: 'general' scores inside the "
            "window |s - p| <= 4 around the last real token p = S - 1."
        ),
        has_attention=True,
    ),
    "luong-local-predictive": ArchitectureInfo(
        builder=luong_local(predictive=True),
        description=(
            "Bidirectional LSTM with Luong local-p attention: p = S.sigmoid(v_p.tanh(W_p q)), "
            "'general' scores inside |s - p| <= 4 times exp(-(s - p)^2 / 2 sigma^2), sigma = 2."
        ),
        has_attention=True,
    ),
    "transformer": ArchitectureInfo(
        builder=TransformerClassifier,
        description=(
            "Transformer encoder: embeddings + sinusoidal positions, 2 pre-norm layers of "
            "4-head scaled dot-product self-attention and feed-forward, pooled by attention "
            "with a learned query."
        ),
        has_attention=True,
        exporter="dynamo",
        has_heads=True,
    ),
}


def build_model(config: ModelConfig) -> SentimentClassifier:
    """A freshly initialised classifier of `config.architecture`."""
    info = ARCHITECTURES.get(config.architecture)
    if info is None:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {config.architecture!r}; known: {known}")
    return info.builder(config)
