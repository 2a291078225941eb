"""The graph every architecture exports: its input and output names, and a padded batch fed
to it. The service never branches on architecture: every graph reads the same two inputs
and answers the same two outputs; a graph may add the optional `heads` output."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAMES = ("probabilities", "attention")
# optional third output: (batch, layers, heads, sequence, sequence) self-attention maps
HEADS_OUTPUT = "heads"


@dataclass(frozen=True)
class PaddedBatch:
    """Texts padded once to the longest: int64 arrays of shape (batch, length)."""

    input_ids: npt.NDArray[np.int64]
    attention_mask: npt.NDArray[np.int64]

    @property
    def rows(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def length(self) -> int:
        return int(self.input_ids.shape[1])

    def feeds(self) -> dict[str, npt.NDArray[np.int64]]:
        """The graph's inputs by name, as ONNX Runtime's `run` takes them."""
        return dict(zip(INPUT_NAMES, (self.input_ids, self.attention_mask), strict=True))
