"""A small Transformer encoder classifier, pooled by attention with a learned query.

token embedding * sqrt(d) + sinusoidal position -> N pre-norm encoder layers of multi-head
scaled dot-product self-attention (padding keys masked) and feed-forward, each with a
residual -> layer norm -> attention pooling, whose weights are the per-token attention.
`forward_detail` also returns every layer's and head's self-attention map.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from attnserve.models.attention import masked_softmax, weighted_sum
from attnserve.models.classifiers import EmbeddingClassifier
from attnserve.models.config import ModelConfig

LAYERS = 2
HEADS = 4


def sinusoidal_positions(attention_mask: torch.Tensor, dim: int) -> torch.Tensor:
    """PE[t, 2i] = sin(t / 10000^(2i/d)), PE[t, 2i+1] = cos(t / 10000^(2i/d)): (B, T, d)."""
    positions = torch.ones_like(attention_mask).cumsum(dim=1) - 1  # (B, T), 0-based
    exponents = torch.arange(0, dim, 2, dtype=torch.float32, device=attention_mask.device)
    frequencies = torch.exp(exponents * (-math.log(10000.0) / dim))  # (d/2,)
    angles = positions.unsqueeze(-1).to(torch.float32) * frequencies  # (B, T, d/2)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)  # (B, T, d)


class MultiHeadSelfAttention(nn.Module):
    """softmax(Q K^T / sqrt(d_k)) V per head, keys on padding masked out; returns the maps."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"model width {dim} is not a multiple of {heads} heads")
        self.heads = heads
        self.d_k = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q, k, v = (  # each (B, h, T, d_k)
            part.unflatten(-1, (self.heads, self.d_k)).transpose(1, 2)
            for part in self.qkv(x).chunk(3, dim=-1)
        )
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_k)  # (B, h, T, T)
        keys = mask[:, None, None, :]  # (B, 1, 1, T)
        # every row holds a real key, so no row is all -inf (nn.MultiheadAttention's NaN)
        maps = masked_softmax(scores, keys) * mask[:, None, :, None].to(scores.dtype)
        mixed = (self.dropout(maps) @ v).transpose(1, 2).flatten(2)  # (B, T, d)
        return self.out(mixed), maps  # (B, T, d), (B, h, T, T)


class EncoderLayer(nn.Module):
    """x + SelfAttention(LayerNorm(x)), then x + FeedForward(LayerNorm(x))."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm_attention = nn.LayerNorm(dim)
        self.attention = MultiHeadSelfAttention(dim, heads, dropout)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_dim), nn.GELU(), nn.Linear(ff_dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attended, maps = self.attention(self.norm_attention(x), mask)  # (B, T, d), (B, h, T, T)
        x = x + self.dropout(attended)  # (B, T, d)
        x = x + self.dropout(self.ff(self.norm_ff(x)))  # (B, T, d)
        return x, maps


class TransformerClassifier(EmbeddingClassifier):
    """d = embedding_dim, feed-forward width 2 * hidden_dim, LAYERS layers of HEADS heads."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        dim = config.embedding_dim
        self.layers = nn.ModuleList(
            EncoderLayer(dim, HEADS, 2 * config.hidden_dim, config.dropout) for _ in range(LAYERS)
        )
        self.norm = nn.LayerNorm(dim)
        self.pool_query = nn.Parameter(torch.randn(dim) / math.sqrt(dim))
        self.head = nn.Linear(dim, config.num_labels)

    def heads_shape(self) -> tuple[int, int]:
        """(layers, heads) of the self-attention maps."""
        return len(self.layers), HEADS

    def forward_detail(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits (B, C), pooling attention (B, T), self-attention maps (B, L, h, T, T))."""
        dim = self.config.embedding_dim
        x = self.embedding(input_ids) * math.sqrt(dim)  # (B, T, d)
        x = self.dropout(x + sinusoidal_positions(attention_mask, dim))  # (B, T, d)
        all_maps = []
        for layer in self.layers:
            x, maps = layer(x, attention_mask)  # (B, T, d), (B, h, T, T)
            all_maps.append(maps)
        states = self.norm(x)  # (B, T, d)
        scores = states @ self.pool_query / math.sqrt(dim)  # (B, T)
        weights = masked_softmax(scores, attention_mask)  # (B, T)
        logits = self.head(self.dropout(weighted_sum(states, weights)))  # (B, C)
        return logits, weights, torch.stack(all_maps, dim=1)

    def forward_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits, weights, _ = self.forward_detail(input_ids, attention_mask)
        return logits, weights
