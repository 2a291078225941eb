"""Attention pooling over a padded sequence: each layer returns (context, weights)."""

from __future__ import annotations

import torch
from torch import nn


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over time that is exactly 0 on padding; every row holds >= 1 real token."""
    real = mask.bool()  # (B, T)
    scores = scores.masked_fill(~real, torch.finfo(scores.dtype).min)  # (B, T)
    weights = torch.softmax(scores, dim=-1)  # (B, T)
    # exp(min - max) already underflows to 0; the multiply makes it exact by construction
    return weights * real.to(weights.dtype)  # (B, T)


def weighted_sum(states: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Context vector: the states (B, T, H) averaged with weights (B, T)."""
    return (weights.unsqueeze(-1) * states).sum(dim=1)  # (B, H)


class TutorialAttention(nn.Module):
    """The tutorial's layer, e_t = tanh(h_t . w + b), with one scalar bias shared over time."""

    def __init__(self, hidden_dim: int) -> None:
        super().__init__()
        # a per-position bias (as in the tutorial) would fix the longest input it can take
        self.score = nn.Linear(hidden_dim, 1)

    def forward(
        self, states: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scores = torch.tanh(self.score(states)).squeeze(-1)  # (B, T)
        weights = masked_softmax(scores, mask)  # (B, T)
        return weighted_sum(states, weights), weights  # (B, H), (B, T)


class AdditiveAttention(nn.Module):
    """Bahdanau attention with a learned query: score_t = v . tanh(W h_t + b)."""

    def __init__(self, hidden_dim: int, attention_dim: int) -> None:
        super().__init__()
        self.project = nn.Linear(hidden_dim, attention_dim)
        self.query = nn.Linear(attention_dim, 1, bias=False)

    def forward(
        self, states: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        keys = torch.tanh(self.project(states))  # (B, T, A)
        scores = self.query(keys).squeeze(-1)  # (B, T)
        weights = masked_softmax(scores, mask)  # (B, T)
        return weighted_sum(states, weights), weights  # (B, H), (B, T)
