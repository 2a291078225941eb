"""The optional `heads` output: a model's per-layer, per-head self-attention maps.

Asked for by `"detail": "heads"` and only then, so ordinary requests never compute or copy
the (batch, layers, heads, T, T) maps; such a request runs unbatched, on its own.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from attnserve.artifact.manifest import HEADS_OUTPUT, OUTPUT_NAMES
from attnserve.artifact.tokenizer import PaddedBatch
from attnserve.service.inference import InferenceOutput


def run_with_heads(
    session: ort.InferenceSession, batch: PaddedBatch
) -> tuple[InferenceOutput, npt.NDArray[np.float32]]:
    """The two outputs every model has, and heads (B, L, h, T, T), zero off the real tokens."""
    feeds = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    probabilities, attention, heads = session.run([*OUTPUT_NAMES, HEADS_OUTPUT], feeds)
    output = InferenceOutput(
        probabilities=np.asarray(probabilities, dtype=np.float32),
        attention=np.asarray(attention, dtype=np.float32),
    )
    return output, np.asarray(heads, dtype=np.float32)
