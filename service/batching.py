"""Dynamic micro-batching: concurrent requests' texts run as one ONNX Runtime call.

Each request's padded batch is queued (cut into pieces of at most `max_batch_size` texts);
one worker task takes everything waiting (up to `max_batch_size` texts, waiting at most
`max_delay_ms` for more), pads it once to the longest row, runs it in a worker thread and
hands every request its own rows back. While a
batch computes, the next one fills, so under load batches grow by themselves and at one
connection nothing waits. The models are padding-invariant (a text's answer does not depend
on what it is padded with), which is what makes sharing a batch safe.

The queue is bounded (`max_queue_texts`): past it a request is refused at once with
`Overloaded` (503 + Retry-After) instead of waiting without end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from attnserve.artifact.tokenizer import PaddedBatch
from attnserve.service.errors import ModelNotReady, Overloaded
from attnserve.service.inference import InferenceOutput, InferenceRunner

logger = logging.getLogger(__name__)


@dataclass
class _Waiting:
    batch: PaddedBatch
    future: asyncio.Future[InferenceOutput] = field(repr=False)

    @property
    def rows(self) -> int:
        return int(self.batch.input_ids.shape[0])


class BatchingRunner:
    """An `InferenceRunner` that merges concurrent `run` calls into shared batches."""

    def __init__(
        self,
        runner: InferenceRunner,
        pad_id: int,
        max_batch_size: int,
        max_delay_ms: float,
        max_queue_texts: int,
        retry_after_s: int = 1,
    ) -> None:
        self.runner = runner
        self.pad_id = pad_id
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_ms / 1000.0
        self.max_queue_texts = max_queue_texts
        self.retry_after_s = retry_after_s
        self._queue: deque[_Waiting] = deque()
        self._queued_texts = 0
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None

    def run_sync(self, batch: PaddedBatch) -> InferenceOutput:
        """Tools without an event loop run their batch directly."""
        return self.runner.run_sync(batch)

    def refusal(self, rows: int) -> Overloaded | None:
        """Overloaded when `rows` more texts would not fit in the queue, else None.

        A request larger than the whole queue is still served when the queue is empty."""
        if self._queued_texts and self._queued_texts + rows > self.max_queue_texts:
            return Overloaded(self._queued_texts, self.max_queue_texts, self.retry_after_s)
        return None

    async def run(self, batch: PaddedBatch) -> InferenceOutput:
        rows, length = batch.input_ids.shape
        refusal = self.refusal(rows)
        if refusal is not None:
            raise refusal
        self._ensure_worker()
        # A request larger than a batch rides in several, each cut to its own longest row.
        futures = [self._enqueue(chunk) for chunk in self._chunks(batch)]
        if len(futures) == 1:
            return await futures[0]
        outputs = await asyncio.gather(*futures)
        attention = np.zeros((rows, length), dtype=np.float32)  # (B, T), zero on padding
        start = 0
        for output in outputs:
            count, width = output.attention.shape
            attention[start : start + count, :width] = output.attention
            start += count
        probabilities = np.concatenate([output.probabilities for output in outputs])  # (B, C)
        return InferenceOutput(probabilities=probabilities, attention=attention)

    def _chunks(self, batch: PaddedBatch) -> list[PaddedBatch]:
        rows = int(batch.input_ids.shape[0])
        if rows <= self.max_batch_size:
            return [batch]
        chunks = []
        for start in range(0, rows, self.max_batch_size):
            mask = batch.attention_mask[start : start + self.max_batch_size]
            width = int(mask.sum(axis=1).max())
            chunks.append(
                PaddedBatch(
                    input_ids=batch.input_ids[start : start + self.max_batch_size, :width],
                    attention_mask=mask[:, :width],
                )
            )
        return chunks

    def _enqueue(self, batch: PaddedBatch) -> asyncio.Future[InferenceOutput]:
        assert self._wakeup is not None
        waiting = _Waiting(batch, asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        self._queued_texts += waiting.rows
        self._wakeup.set()
        return waiting.future

    async def close(self) -> None:
        """Stops the worker; requests still queued are answered ModelNotReady."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        while self._queue:
            waiting = self._queue.popleft()
            if not waiting.future.done():
                waiting.future.set_exception(ModelNotReady())
        self._queued_texts = 0

    def _ensure_worker(self) -> None:
        # Started by the first request, so it lives on the loop that serves requests.
        if self._worker is None or self._worker.done():
            self._wakeup = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._work())

    async def _work(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            if not self._queue:
                self._wakeup.clear()
                continue
            deadline = loop.time() + self.max_delay_s
            # Wait for more only while the batch is not full and the delay is not spent.
            while self._queued_texts < self.max_batch_size and loop.time() < deadline:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), deadline - loop.time())
                except TimeoutError:
                    break
            taken = self._take()
            await self._run(taken)

    def _take(self) -> list[_Waiting]:
        """The oldest requests that fit in one batch; the first always goes."""
        taken = [self._queue.popleft()]
        rows = taken[0].rows
        while self._queue and rows + self._queue[0].rows <= self.max_batch_size:
            taken.append(self._queue.popleft())
            rows += taken[-1].rows
        self._queued_texts -= rows
        if not self._queue and self._wakeup is not None:
            self._wakeup.clear()
        return taken

    async def _run(self, taken: list[_Waiting]) -> None:
        live = [waiting for waiting in taken if not waiting.future.done()]
        if not live:
            return
        try:
            merged = self.merge([waiting.batch for waiting in live])
            output = await self.runner.run(merged)
        except Exception as exc:
            for waiting in live:
                if not waiting.future.done():
                    waiting.future.set_exception(exc)
            return
        start = 0
        for waiting in live:
            rows, length = waiting.batch.input_ids.shape
            if not waiting.future.done():
                waiting.future.set_result(
                    InferenceOutput(
                        probabilities=output.probabilities[start : start + rows],  # (b, C)
                        attention=output.attention[start : start + rows, :length],  # (b, t)
                    )
                )
            start += rows

    def merge(self, batches: list[PaddedBatch]) -> PaddedBatch:
        """Pads every batch once to the longest row: (sum of b, max of t)."""
        if len(batches) == 1:
            return batches[0]
        rows = sum(int(b.input_ids.shape[0]) for b in batches)
        length = max(int(b.input_ids.shape[1]) for b in batches)
        input_ids = np.full((rows, length), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((rows, length), dtype=np.int64)
        start = 0
        for b in batches:
            count, width = b.input_ids.shape
            input_ids[start : start + count, :width] = b.input_ids
            attention_mask[start : start + count, :width] = b.attention_mask
            start += count
        return PaddedBatch(input_ids=input_ids, attention_mask=attention_mask)
