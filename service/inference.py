"""One ONNX Runtime session, run off the event loop: a padded batch in, the graph's outputs out.

`SessionRunner` is the innermost link of a model's runner chain (service/registry.py builds
it): the batcher in front of it merges requests, and the predictor only sees `Runner`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from attnserve.artifact.graph import HEADS_OUTPUT, OUTPUT_NAMES, PaddedBatch
from attnserve.service.errors import Overloaded
from attnserve.service.onnxruntime_env import onnxruntime as ort

# Told the size of every batch ONNX Runtime runs (the metrics' batch-size histogram).
BatchObserver = Callable[[int], None]


@dataclass(frozen=True)
class GraphOutputs:
    """The graph's outputs for one batch."""

    probabilities: npt.NDArray[np.float32]  # (B, C)
    attention: npt.NDArray[np.float32]  # (B, T), zero on padding
    heads: npt.NDArray[np.float32] | None = None  # (B, L, h, T, T), only when asked for


@dataclass(frozen=True)
class Computed:
    """A batch's outputs, and how long it waited for its turn and then ran, in milliseconds."""

    outputs: GraphOutputs
    queue_ms: float
    inference_ms: float


class Runner(Protocol):
    """What a predictor runs its padded batch on: a session, or a batcher in front of one."""

    def refusal(self, rows: int) -> Overloaded | None:
        """Overloaded when `rows` more texts would not be taken now, else None."""
        ...

    def expected_wait_ms(self, rows: int = 0) -> float:
        """How long a request of `rows` texts would wait before its batch runs, as measured."""
        ...

    async def run(self, batch: PaddedBatch, heads: bool = False) -> Computed: ...

    async def close(self) -> None: ...


class SessionRunner:
    """Runs one session; each call computes in a worker thread (ONNX Runtime releases the GIL,
    so it runs in parallel with the event loop)."""

    def __init__(self, session: ort.InferenceSession, observe: BatchObserver | None = None):
        self.session = session
        self.observe = observe

    def compute(self, batch: PaddedBatch, heads: bool = False) -> GraphOutputs:
        names = [*OUTPUT_NAMES, HEADS_OUTPUT] if heads else list(OUTPUT_NAMES)
        if self.observe is not None:
            self.observe(batch.rows)
        results = self.session.run(names, batch.feeds())
        return GraphOutputs(
            probabilities=np.asarray(results[0], dtype=np.float32),
            attention=np.asarray(results[1], dtype=np.float32),
            heads=np.asarray(results[2], dtype=np.float32) if heads else None,
        )

    def refusal(self, rows: int) -> Overloaded | None:
        return None  # no queue: every call runs at once, in its own thread

    def expected_wait_ms(self, rows: int = 0) -> float:
        return 0.0

    async def run(self, batch: PaddedBatch, heads: bool = False) -> Computed:
        start = time.perf_counter()
        outputs = await asyncio.to_thread(self.compute, batch, heads)
        return Computed(outputs, queue_ms=0.0, inference_ms=(time.perf_counter() - start) * 1e3)

    async def close(self) -> None:
        return None
