"""The known architectures by name: how to build each one and how to describe it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from attnserve.models.classifiers import (
    BiLSTMAttentionClassifier,
    LSTMAttentionClassifier,
    LSTMClassifier,
    SentimentClassifier,
)
from attnserve.models.config import ModelConfig
from attnserve.models.luong import SCORES, luong_global, luong_local
from attnserve.models.minilm import MiniLMAttentionClassifier, pretrained_dir
from attnserve.models.transformer import TransformerClassifier

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
    # the longest input it can read (a pretrained encoder's position embeddings); None: any
    max_positions: int | None = None
    # a pretrained tokenizer.json to use as is; None: train a word-level one on the split
    pretrained_tokenizer: Callable[[], Path] | None = None
    # TrainConfig fields this architecture trains with unless told otherwise
    training_defaults: dict[str, float | int | str] = field(default_factory=dict)
    # most texts the service should run in one batch (the manifest's serving hint); None: its
    # default. 1 where padding to the longest text costs more than batching saves.
    serving_batch_size: int | None = None
    # batch waiting texts of like length together (the manifest's serving hint): where the
    # padded length costs more than the wait of a text passed over for a batch or two
    serving_group_by_length: bool = False
    # ONNX Runtime's threads spin before they sleep (the manifest's serving hint)
    serving_spinning: bool = False
    # one one-thread batch per core at once, not one batch on every core (the manifest's hint)
    serving_batch_per_core: bool = False


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
    "minilm-attention": ArchitectureInfo(
        builder=MiniLMAttentionClassifier,
        description=(
            "Pretrained all-MiniLM-L6-v2 encoder (6 layers, 12 heads, 384 dims) fine-tuned "
            "with an additive attention-pooling head score_t = v.tanh(W h_t + b) over its "
            "word pieces; [CLS] and [SEP] are masked out of the pooling (weight exactly 0), "
            "so the word pieces' weights sum to 1 and the service sums them into words."
        ),
        has_attention=True,
        exporter="dynamo",
        max_positions=512,
        pretrained_tokenizer=lambda: pretrained_dir() / "tokenizer.json",
        # static int8 (the same answer in any batch): bench.tune served it 1.6x as fast at 32
        # connections in batches of at most 8 as a text at a time, and 1.6x with 64-text requests
        # (BENCHMARKS.md); 16 was level, 64 slower (padding to the longest text)
        serving_batch_size=8,
        # 1.26x the requests/s at 32 connections with a 1.27x lower p50 (BENCHMARKS.md)
        serving_group_by_length=True,
        # p50 at one connection 1.9-3.3 ms against 3.6-4.0 ms, faster at 32 connections too;
        # the word models were slower with it under load (BENCHMARKS.md)
        serving_spinning=True,
        # on a 2-core Xeon with VNNI 1.29x the sentences/s at 32 connections and 1.31x with
        # 64-text requests, for 0.21 ms more at p50 on one connection (BENCHMARKS.md)
        serving_batch_per_core=True,
        training_defaults={
            "hidden_dim": 128,
            "dropout": 0.1,
            "learning_rate": 1e-3,
            "encoder_learning_rate": 1e-4,
            "layer_decay": 0.8,
            "schedule": "linear",
            "warmup_fraction": 0.1,
            "batch_size": 16,
            "max_epochs": 6,
            "patience": 3,
            "max_tokens": 256,
        },
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
