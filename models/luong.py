"""Luong et al. (2015) attention for classification: global (dot/general/concat) and local.

The query q is the encoder's final state (models/encoders.py); the classifier reads Luong's
attentional state h~ = tanh(W_c [c; q]) built from the context c = sum_s a_s h_s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from attnserve.models.attention import masked_softmax, weighted_sum
from attnserve.models.classifiers import EmbeddingClassifier, real_lengths
from attnserve.models.config import ModelConfig
from attnserve.models.encoders import BiLSTMEncoder

Score = Literal["dot", "general", "concat"]
LOCAL_HALF_WIDTH = 4  # D: the window is [p - D, p + D]
SCORES: dict[Score, str] = {
    "dot": "h_s.q",
    "general": "h_s.W_a q",
    "concat": "v_a.tanh(W_a [h_s; q])",
}


class LuongScore(nn.Module):
    """score(h_s, q): dot h_s.q, general h_s.(W_a q), concat v_a.tanh(W_a [h_s; q])."""

    def __init__(self, dim: int, score: Score) -> None:
        super().__init__()
        self.score = score
        if score == "general":
            self.W_a = nn.Linear(dim, dim, bias=False)
        elif score == "concat":
            self.W_a = nn.Linear(2 * dim, dim, bias=False)
            self.v_a = nn.Linear(dim, 1, bias=False)

    def forward(self, states: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        if self.score == "dot":
            dot: torch.Tensor = (states * query.unsqueeze(1)).sum(dim=-1)  # (B, T)
            return dot
        if self.score == "general":
            general: torch.Tensor = (states * self.W_a(query).unsqueeze(1)).sum(dim=-1)  # (B, T)
            return general
        pairs = torch.cat([states, query.unsqueeze(1).expand_as(states)], dim=-1)  # (B, T, 2D)
        concat: torch.Tensor = self.v_a(torch.tanh(self.W_a(pairs))).squeeze(-1)  # (B, T)
        return concat


class LuongGlobalAttention(nn.Module):
    """a_s = softmax_s score(h_s, q) over every real token."""

    def __init__(self, dim: int, score: Score) -> None:
        super().__init__()
        self.score = LuongScore(dim, score)

    def forward(
        self, states: torch.Tensor, query: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        weights = masked_softmax(self.score(states, query), mask)  # (B, T)
        return weighted_sum(states, weights), weights  # (B, D), (B, T)


class LuongLocalAttention(nn.Module):
    """Attention inside the window |s - p| <= D around an aligned position p (0-based).

    monotonic:  p = S - 1, the last real token (S: the sentence's real length, not the
                padded one), a_s = softmax over the window of score(h_s, q);
    predictive: p = S * sigmoid(v_p . tanh(W_p q)), and the window's softmax is multiplied by
                exp(-(s - p)^2 / 2 sigma^2), sigma = D / 2, then renormalised to sum to 1 —
                computed as one softmax of score(h_s, q) - (s - p)^2 / 2 sigma^2.
    The window always holds a real token: p < S and D >= 1. Scores are `general`.
    """

    def __init__(self, dim: int, *, predictive: bool, half_width: int = LOCAL_HALF_WIDTH) -> None:
        super().__init__()
        if half_width < 1:
            raise ValueError(f"half_width must be at least 1, got {half_width}")
        self.predictive = predictive
        self.half_width = half_width
        self.score = LuongScore(dim, "general")
        if predictive:
            self.W_p = nn.Linear(dim, dim, bias=False)
            self.v_p = nn.Linear(dim, 1, bias=False)

    def aligned_position(self, query: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """p per sentence, as a float (B, 1)."""
        length = real_lengths(mask).to(query.dtype).unsqueeze(1)  # (B, 1)
        if not self.predictive:
            return length - 1.0  # (B, 1)
        return length * torch.sigmoid(self.v_p(torch.tanh(self.W_p(query))))  # (B, 1)

    def forward(
        self, states: torch.Tensor, query: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.aligned_position(query, mask)  # (B, 1)
        positions = (torch.ones_like(mask).cumsum(dim=1) - 1).to(states.dtype)  # (B, T)
        distance = positions - p  # (B, T)
        window = mask.bool() & (distance.abs() <= self.half_width)  # (B, T)
        scores = self.score(states, query)  # (B, T)
        if self.predictive:
            sigma = self.half_width / 2.0
            scores = scores - distance.square() / (2.0 * sigma**2)  # (B, T)
        weights = masked_softmax(scores, window)  # (B, T)
        return weighted_sum(states, weights), weights  # (B, D), (B, T)


class LuongClassifier(EmbeddingClassifier):
    """BiLSTM encoder, Luong attention with the final state as query, h~ = tanh(W_c [c; q])."""

    def __init__(self, config: ModelConfig, attention: nn.Module) -> None:
        super().__init__(config)
        dim = 2 * config.hidden_dim
        self.encoder = BiLSTMEncoder(config.embedding_dim, config.hidden_dim)
        self.attention = attention
        self.W_c = nn.Linear(2 * dim, dim)
        self.head = nn.Linear(dim, config.num_labels)

    def forward_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        states, query = self.encoder(self.embed(input_ids), attention_mask)  # (B, T, D), (B, D)
        context, weights = self.attention(states, query, attention_mask)  # (B, D), (B, T)
        attentional = torch.tanh(self.W_c(torch.cat([context, query], dim=-1)))  # (B, D)
        return self.head(self.dropout(attentional)), weights  # (B, C), (B, T)


def luong_global(score: Score) -> Callable[[ModelConfig], LuongClassifier]:
    """Builder of a global-attention classifier with the given score function."""

    def build(config: ModelConfig) -> LuongClassifier:
        return LuongClassifier(config, LuongGlobalAttention(2 * config.hidden_dim, score))

    return build


def luong_local(*, predictive: bool) -> Callable[[ModelConfig], LuongClassifier]:
    """Builder of a local-attention classifier, monotonic or predictive."""

    def build(config: ModelConfig) -> LuongClassifier:
        attention = LuongLocalAttention(2 * config.hidden_dim, predictive=predictive)
        return LuongClassifier(config, attention)

    return build
