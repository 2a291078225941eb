"""The inference interface: a padded batch in, probabilities and attention out.

The predictor depends only on `InferenceRunner`, so a batching runner can stand in for
`OnnxModelRunner` without the predictor changing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from attnserve.artifact.manifest import OUTPUT_NAMES
from attnserve.artifact.tokenizer import PaddedBatch


@dataclass(frozen=True)
class InferenceOutput:
    """The graph's outputs for one batch."""

    probabilities: npt.NDArray[np.float32]  # (B, C)
    attention: npt.NDArray[np.float32]  # (B, T), zero on padding


class InferenceRunner(Protocol):
    async def run(self, batch: PaddedBatch) -> InferenceOutput: ...

    def run_sync(self, batch: PaddedBatch) -> InferenceOutput: ...


class OnnxModelRunner:
    """Runs one ONNX Runtime session; `run` keeps the event loop free while it computes."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session

    def run_sync(self, batch: PaddedBatch) -> InferenceOutput:
        feeds = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        probabilities, attention = self.session.run(list(OUTPUT_NAMES), feeds)
        return InferenceOutput(
            probabilities=np.asarray(probabilities, dtype=np.float32),
            attention=np.asarray(attention, dtype=np.float32),
        )

    async def run(self, batch: PaddedBatch) -> InferenceOutput:
        # ONNX Runtime releases the GIL, so a worker thread runs it in parallel with the loop.
        return await asyncio.to_thread(self.run_sync, batch)
