"""The names of the architectures (models/architectures.py), without importing PyTorch: the
command line offers them as choices on the serving install too."""

from __future__ import annotations

from typing import Literal

ArchitectureName = Literal[
    "lstm",
    "lstm-additive",
    "bilstm-additive",
    "minilm-attention",
    "luong-global-dot",
    "luong-global-general",
    "luong-global-concat",
    "luong-local-monotonic",
    "luong-local-predictive",
    "transformer",
]
