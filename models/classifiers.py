"""The sentiment classifiers: right-padded token ids in, (probabilities, attention) out.

Each one is exportable to ONNX with dynamic batch and sequence axes, so none uses
pack_padded_sequence; instead every position a sentence's answer depends on is a real token,
which makes the answer independent of how much padding the batch added.
"""

from __future__ import annotations

import torch
from torch import nn

from attnserve.models.attention import AdditiveAttention, TutorialAttention
from attnserve.models.config import ModelConfig


def real_lengths(attention_mask: torch.Tensor) -> torch.Tensor:
    """Number of real tokens per row of a right-padded mask."""
    return attention_mask.sum(dim=1)  # (B,)


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverses each row's first `length` steps, leaving padding in place (self-inverse)."""
    positions = torch.ones_like(x[:, :, 0], dtype=torch.int64).cumsum(dim=1) - 1  # (B, T)
    last = (lengths - 1).unsqueeze(1)  # (B, 1)
    index = torch.where(positions <= last, last - positions, positions)  # (B, T)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))  # (B, T, D)


class SentimentClassifier(nn.Module):
    """Right-padded ids and mask in, (probabilities, attention) out; subclasses define
    forward_logits."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config

    def forward_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (B, C), attention (B, T)) for int64 ids and mask of shape (B, T)."""
        raise NotImplementedError

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits, attention = self.forward_logits(input_ids, attention_mask)
        return torch.softmax(logits, dim=-1), attention  # (B, C), (B, T)

    def input_embedding(self) -> nn.Module:
        """The layer turning token ids into vectors (gradient x input hooks its output)."""
        raise NotImplementedError


class EmbeddingClassifier(SentimentClassifier):
    """Word embedding + dropout, shared by the classifiers trained from scratch."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.embedding = nn.Embedding(
            config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id
        )
        self.dropout = nn.Dropout(config.dropout)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token vectors with dropout; the padding id's vector is zero."""
        embedded: torch.Tensor = self.dropout(self.embedding(input_ids))  # (B, T, E)
        return embedded

    def input_embedding(self) -> nn.Module:
        return self.embedding


class LSTMClassifier(EmbeddingClassifier):
    """Unidirectional LSTM read at each sentence's last real token; no attention."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.lstm = nn.LSTM(config.embedding_dim, config.hidden_dim, batch_first=True)
        self.head = nn.Linear(config.hidden_dim, config.num_labels)

    def forward_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        states, _ = self.lstm(self.embed(input_ids))  # (B, T, H)
        last = (real_lengths(attention_mask) - 1).view(-1, 1, 1)  # (B, 1, 1)
        final = states.gather(1, last.expand(-1, 1, states.size(2))).squeeze(1)  # (B, H)
        logits = self.head(self.dropout(final))  # (B, C)
        return logits, torch.zeros_like(attention_mask, dtype=logits.dtype)  # (B, C), (B, T)


class LSTMAttentionClassifier(EmbeddingClassifier):
    """Unidirectional LSTM pooled by the tutorial's attention layer."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.lstm = nn.LSTM(config.embedding_dim, config.hidden_dim, batch_first=True)
        self.attention = TutorialAttention(config.hidden_dim)
        self.head = nn.Linear(config.hidden_dim, config.num_labels)

    def forward_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        states, _ = self.lstm(self.embed(input_ids))  # (B, T, H)
        context, weights = self.attention(states, attention_mask)  # (B, H), (B, T)
        return self.head(self.dropout(context)), weights  # (B, C), (B, T)


class BiLSTMAttentionClassifier(EmbeddingClassifier):
    """Bidirectional LSTM whose backward pass starts at the last real token, additive attention."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.forward_lstm = nn.LSTM(config.embedding_dim, config.hidden_dim, batch_first=True)
        self.backward_lstm = nn.LSTM(config.embedding_dim, config.hidden_dim, batch_first=True)
        self.attention = AdditiveAttention(2 * config.hidden_dim, config.hidden_dim)
        self.head = nn.Linear(2 * config.hidden_dim, config.num_labels)

    def forward_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = real_lengths(attention_mask)  # (B,)
        embedded = self.embed(input_ids)  # (B, T, E)
        forward_states, _ = self.forward_lstm(embedded)  # (B, T, H)
        # nn.LSTM(bidirectional=True) would start the backward pass in the padding
        reversed_states, _ = self.backward_lstm(reverse_within_length(embedded, lengths))
        backward_states = reverse_within_length(reversed_states, lengths)  # (B, T, H)
        states = torch.cat([forward_states, backward_states], dim=-1)  # (B, T, 2H)
        context, weights = self.attention(states, attention_mask)  # (B, 2H), (B, T)
        return self.head(self.dropout(context)), weights  # (B, C), (B, T)
