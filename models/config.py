"""Hyperparameters of a classifier: saved with its weights, enough to rebuild it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    architecture: str
    vocab_size: int
    pad_token_id: int
    num_labels: int = 2
    embedding_dim: int = 64
    hidden_dim: int = 64
    dropout: float = 0.3
    # ids the tokenizer adds around every text ([CLS], [SEP]); attention pooling skips them
    special_token_ids: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
