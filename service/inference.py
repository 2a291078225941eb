"""One ONNX Runtime session, run off the event loop: a padded batch in, the graph's outputs out,
its probabilities calibrated.

`SessionRunner` is the innermost link of a model's runner chain (service/registry.py builds
it): the batcher in front of it merges requests, and the predictor only sees `Runner`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from attnserve.artifact.calibration import temperature_scaled
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

    def run_now(self, batch: PaddedBatch) -> Computed | None:
        """`batch` computed on the calling thread (the event loop) when it is small and cheap
        enough and the model idle; else None, and it goes to `run`."""
        ...

    async def close(self) -> None: ...


# Threads a session computes in: as many as asyncio's default executor would start.
INFERENCE_THREADS = min(32, (os.cpu_count() or 1) + 4)


@dataclass(frozen=True)
class _Job:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[GraphOutputs]
    batch: PaddedBatch
    heads: bool


# Weight of the newest batch in the moving averages of measured times.
_SMOOTHING = 0.2


def smoothed(average: float | None, newest: float) -> float:
    """`newest` folded into a moving average of measured times; the first one starts it."""
    return newest if average is None else (1 - _SMOOTHING) * average + _SMOOTHING * newest


class SessionRunner:
    """Runs one session; each call computes in one of the session's own threads (ONNX Runtime
    releases the GIL, so it runs in parallel with the event loop).

    The threads take jobs from one queue and hand each answer back with one
    `call_soon_threadsafe`: a cheaper round trip than `asyncio.to_thread`'s executor, whose
    futures and context copy cost about as much as a small batch's inference.

    `run_now` computes a one-text batch on the calling thread instead, while no thread is
    computing, when the model's one-text batches have computed in under `inline_below_ms` (a
    moving average): for a small model a lone request's text computes in about the time the
    round trip to a thread and back takes, and the threads' wake-ups are saved."""

    def __init__(
        self,
        session: ort.InferenceSession,
        observe: BatchObserver | None = None,
        temperature: float = 1.0,
        threads: int = INFERENCE_THREADS,
        inline_below_ms: float = 0.0,
    ):
        self.session = session
        self.observe = observe
        self.temperature = temperature
        self.threads = threads
        self.inline_below_ms = inline_below_ms
        # milliseconds a batch of one text computed, a moving average; None until one has run
        self.one_text_ms: float | None = None
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.workers: list[threading.Thread] = []  # started as calls came, up to `threads`
        self._busy = 0  # jobs queued or computing
        self._lock = threading.Lock()

    def compute(self, batch: PaddedBatch, heads: bool = False) -> GraphOutputs:
        names = [*OUTPUT_NAMES, HEADS_OUTPUT] if heads else list(OUTPUT_NAMES)
        if self.observe is not None:
            self.observe(batch.rows)
        start = time.perf_counter()
        results = self.session.run(names, batch.feeds())
        if batch.rows == 1:
            self.one_text_ms = smoothed(self.one_text_ms, (time.perf_counter() - start) * 1e3)
        return GraphOutputs(
            # every answer, /v1 and /v2 alike, is calibrated here, once a batch
            probabilities=temperature_scaled(
                np.asarray(results[0], dtype=np.float32), self.temperature
            ),
            attention=np.asarray(results[1], dtype=np.float32),
            heads=np.asarray(results[2], dtype=np.float32) if heads else None,
        )

    def refusal(self, rows: int) -> Overloaded | None:
        return None  # no queue of its own: each call runs once one of its threads is free

    def expected_wait_ms(self, rows: int = 0) -> float:
        return 0.0

    async def run(self, batch: PaddedBatch, heads: bool = False) -> Computed:
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[GraphOutputs] = loop.create_future()
        self._start_worker_unless_one_is_free()
        self._jobs.put(_Job(loop, future, batch, heads))
        outputs = await future
        return Computed(outputs, queue_ms=0.0, inference_ms=(time.perf_counter() - start) * 1e3)

    def run_now(self, batch: PaddedBatch) -> Computed | None:
        measured = self.one_text_ms
        if batch.rows != 1 or self._busy or measured is None or measured >= self.inline_below_ms:
            return None
        start = time.perf_counter()
        outputs = self.compute(batch)
        return Computed(outputs, queue_ms=0.0, inference_ms=(time.perf_counter() - start) * 1e3)

    async def close(self) -> None:
        """Lets the threads finish the jobs queued, and waits until they have stopped (a
        process must not exit while one of them is inside ONNX Runtime)."""
        workers, self.workers = self.workers, []
        for _ in workers:
            self._jobs.put(None)
        await asyncio.to_thread(_join, workers)

    def _start_worker_unless_one_is_free(self) -> None:
        with self._lock:
            self._busy += 1
            if self._busy <= len(self.workers) or len(self.workers) >= self.threads:
                return
            worker = threading.Thread(target=self._work, name="inference", daemon=True)
            self.workers.append(worker)
        worker.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            outputs: GraphOutputs | None = None
            error: Exception | None = None
            try:
                outputs = self.compute(job.batch, job.heads)
            except Exception as exc:  # handed to the awaiting request, which answers it
                error = exc
            with self._lock:  # before the answer: its caller may find the model idle
                self._busy -= 1
            # a loop closed meanwhile has nobody waiting for the answer
            with contextlib.suppress(RuntimeError):
                job.loop.call_soon_threadsafe(_settle, job.future, outputs, error)


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join()


def _settle(
    future: asyncio.Future[GraphOutputs], outputs: GraphOutputs | None, error: Exception | None
) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert outputs is not None
        future.set_result(outputs)
