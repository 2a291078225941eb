"""A bidirectional LSTM encoder that is exact under right padding, shared by the Luong models."""

from __future__ import annotations

import torch
from torch import nn

from attnserve.models.classifiers import real_lengths, reverse_within_length


class BiLSTMEncoder(nn.Module):
    """Forward and backward LSTMs; the backward pass starts at each sentence's last real token.

    Returns every position's state h_s = [forward_s; backward_s] and the encoder's final
    state q = [forward at the last real token; backward at the first token], Luong's query.
    """

    def __init__(self, input_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.forward_lstm = nn.LSTM(input_dim, hidden_dim, batch_first=True)
        self.backward_lstm = nn.LSTM(input_dim, hidden_dim, batch_first=True)

    def forward(
        self, embedded: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = real_lengths(attention_mask)  # (B,)
        forward_states, _ = self.forward_lstm(embedded)  # (B, T, H)
        reversed_states, _ = self.backward_lstm(reverse_within_length(embedded, lengths))
        backward_states = reverse_within_length(reversed_states, lengths)  # (B, T, H)
        states = torch.cat([forward_states, backward_states], dim=-1)  # (B, T, 2H)
        last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, forward_states.size(2))  # (B, 1, H)
        forward_final = forward_states.gather(1, last).squeeze(1)  # (B, H)
        final = torch.cat([forward_final, backward_states[:, 0]], dim=-1)  # (B, 2H)
        return states, final
