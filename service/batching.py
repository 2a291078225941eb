"""Dynamic micro-batching: concurrent requests' texts run as one ONNX Runtime call.

Each request's padded batch is queued (a request larger than `max_batch_size` texts is sorted
by length and cut into pieces of at most that many, so that each piece pays for little
padding); one worker task takes what is waiting (up to `max_batch_size` texts, waiting at most
`max_delay_ms` for more; for a model whose manifest asks for it, when more wait than fit, the
oldest request and those nearest it in length), pads it once to the longest row, runs it in a
worker thread and hands every request its own rows back, with how long it waited in the queue
and how long its batch computed. Up to `max_concurrent_batches` batches compute at once (ONNX
Runtime runs them side by side, each on the cores its own operators leave idle); once that
many are computing, the next one fills, so under load batches grow by themselves and at one
connection nothing waits. The models are
padding-invariant (a text's answer does not depend on what it is padded with), which is what
makes sharing a batch safe.
Requests that ask for the `heads` output share batches only with each other.

The queue is bounded in texts (`max_queue_texts`) and in time: each batch's time per text is
measured (a moving average), and a request that would wait longer than `max_queue_wait_s`
behind what is queued is refused at once (503 + Retry-After) instead of waiting past its
deadline. A request whose caller gave up (its task cancelled) leaves the queue at once and
is never computed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from attnserve.artifact.graph import PaddedBatch
from attnserve.service.errors import ModelNotReady, Overloaded, QueueTooSlow
from attnserve.service.inference import Computed, GraphOutputs, SessionRunner, smoothed

logger = logging.getLogger(__name__)


# How far past a batch the queue is searched for requests of like length, in batches.
_LOOKAHEAD = 2
# What a text is taken to cost before any batch has run.
UNMEASURED_MS_PER_TEXT = 1.0


@dataclass(eq=False)  # a request is itself, whatever its arrays hold
class _Waiting:
    batch: PaddedBatch
    heads: bool  # asks for the heads output too: batched only with others that do
    future: asyncio.Future[Computed] = field(repr=False)
    queued_at: float = field(default_factory=time.perf_counter)

    @property
    def rows(self) -> int:
        return self.batch.rows


class Batcher:
    """A `Runner` that merges concurrent `run` calls into shared batches of one session."""

    def __init__(
        self,
        runner: SessionRunner,
        pad_id: int,
        max_batch_size: int,
        max_delay_ms: float,
        max_queue_texts: int,
        max_wait_s: float = float("inf"),
        retry_after_s: int = 1,
        group_by_length: bool = False,
        max_concurrent_batches: int = 1,
    ) -> None:
        self.runner = runner
        self.pad_id = pad_id
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_ms / 1000.0
        self.max_queue_texts = max_queue_texts
        self.max_wait_s = max_wait_s
        self.retry_after_s = retry_after_s
        self.group_by_length = group_by_length
        self.max_concurrent_batches = max_concurrent_batches
        self.ms_per_text: float | None = None  # measured; None until a batch has run
        self._queue: deque[_Waiting] = deque()
        self._queued_texts = 0
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._computing: set[asyncio.Task[None]] = set()

    def refusal(self, rows: int) -> Overloaded | None:
        """Overloaded when `rows` more texts would not fit in the queue, or would wait longer
        than `max_wait_s` behind it; else None.

        A request larger than the whole queue is still served when the queue is empty."""
        if not self._queued_texts:
            return None
        if self._queued_texts + rows > self.max_queue_texts:
            return Overloaded(self._queued_texts, self.max_queue_texts, self.retry_after_s)
        expected_s = self.expected_wait_ms(rows) / 1000.0
        if expected_s > self.max_wait_s:
            return QueueTooSlow(self._queued_texts, expected_s, self.max_wait_s)
        return None

    def expected_wait_ms(self, rows: int = 0) -> float:
        """How long what is queued, and `rows` more texts, would take to run, as measured (a
        millisecond a text until a batch has run), `max_concurrent_batches` batches at once."""
        ms_per_text = self.ms_per_text or UNMEASURED_MS_PER_TEXT
        return (self._queued_texts + rows) * ms_per_text / self.max_concurrent_batches

    async def run(self, batch: PaddedBatch, heads: bool = False) -> Computed:
        refusal = self.refusal(batch.rows)
        if refusal is not None:
            raise refusal
        self._ensure_worker()
        start = time.perf_counter()
        # A request larger than a batch rides in several, each cut to its own longest row.
        chunks, order = self.chunks(batch)
        futures = [self._enqueue(chunk, heads) for chunk in chunks]
        if len(futures) == 1:
            return await futures[0]
        parts = await asyncio.gather(*futures)
        # The chunks hold the request's rows in `order`: each part goes back to its rows.
        attention = np.zeros((batch.rows, batch.length), dtype=np.float32)  # (B, T), 0 on padding
        heads_maps = None
        if heads:
            first = parts[0].outputs.heads
            assert first is not None
            # (B, L, h, T, T), zero off each text's own tokens
            heads_maps = np.zeros(
                (batch.rows, *first.shape[1:3], batch.length, batch.length), dtype=np.float32
            )
        probabilities = np.empty(
            (batch.rows, parts[0].outputs.probabilities.shape[1]), dtype=np.float32
        )  # (B, C)
        row = 0
        for part in parts:
            count, width = part.outputs.attention.shape
            rows = order[row : row + count]
            probabilities[rows] = part.outputs.probabilities
            attention[rows, :width] = part.outputs.attention
            if heads_maps is not None and part.outputs.heads is not None:
                heads_maps[rows, :, :, :width, :width] = part.outputs.heads
            row += count
        outputs = GraphOutputs(probabilities=probabilities, attention=attention, heads=heads_maps)
        # Its chunks ran one after another or side by side: what was not computing was waiting.
        inference_ms = sum(part.inference_ms for part in parts)
        total_ms = (time.perf_counter() - start) * 1000.0
        return Computed(
            outputs, queue_ms=max(0.0, total_ms - inference_ms), inference_ms=inference_ms
        )

    def run_now(self, batch: PaddedBatch) -> Computed | None:
        """The session computes `batch` here when nothing waits or computes (there is nothing
        to batch it with) and it would; else None."""
        if self._queue or self._computing:
            return None
        return self.runner.run_now(batch)

    def chunks(self, batch: PaddedBatch) -> tuple[list[PaddedBatch], npt.NDArray[np.intp]]:
        """`batch` in pieces of at most `max_batch_size` texts, each cut to its own longest
        row, and the order of `batch`'s rows in them. A request larger than a batch is sorted
        by length first, so that each piece holds texts of like length and pays for little
        padding (a 64-text request of short and long texts is not padded to the longest)."""
        if batch.rows <= self.max_batch_size:
            return [batch], np.arange(batch.rows)
        lengths = batch.attention_mask.sum(axis=1)  # padding is on the right
        order = np.argsort(lengths, kind="stable")
        input_ids, attention_mask = batch.input_ids[order], batch.attention_mask[order]
        pieces = []
        for start in range(0, batch.rows, self.max_batch_size):
            end = start + self.max_batch_size
            width = int(lengths[order[min(end, batch.rows) - 1]])  # its longest: the last
            pieces.append(
                PaddedBatch(
                    input_ids=input_ids[start:end, :width],
                    attention_mask=attention_mask[start:end, :width],
                )
            )
        return pieces, order

    def _enqueue(self, batch: PaddedBatch, heads: bool) -> asyncio.Future[Computed]:
        assert self._wakeup is not None
        waiting = _Waiting(batch, heads, asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        self._queued_texts += waiting.rows
        waiting.future.add_done_callback(lambda future: self._left(waiting, future))
        self._wakeup.set()
        return waiting.future

    def _left(self, waiting: _Waiting, future: asyncio.Future[Computed]) -> None:
        """A request cancelled while queued leaves the queue now, not when its turn comes."""
        if future.cancelled() and waiting in self._queue:
            self._queue.remove(waiting)
            self._queued_texts -= waiting.rows

    async def close(self) -> None:
        """Stops the worker and the session's threads; requests still queued or computing are
        answered ModelNotReady."""
        for task in (self._worker, *self._computing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._worker = None
        while self._queue:
            waiting = self._queue.popleft()
            if not waiting.future.done():
                waiting.future.set_exception(ModelNotReady())
        self._queued_texts = 0
        await self.runner.close()

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
            # Fills while as many batches as may compute at once are computing.
            while len(self._computing) >= self.max_concurrent_batches:
                await asyncio.wait(self._computing, return_when=asyncio.FIRST_COMPLETED)
            deadline = loop.time() + self.max_delay_s
            # Wait for more only while the batch is not full and the delay is not spent.
            while self._queued_texts < self.max_batch_size and loop.time() < deadline:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), deadline - loop.time())
                except TimeoutError:
                    break
            if self._queue:  # unless all that waited were cancelled meanwhile
                computing = loop.create_task(self._run(self._take()))
                self._computing.add(computing)
                computing.add_done_callback(self._computing.discard)

    def _take(self) -> list[_Waiting]:
        """The oldest request, and beside it as many others asking for the same outputs as fit
        in one batch: the next ones in order of arrival or, with `group_by_length` and more
        waiting than fit, those nearest the oldest in length (a batch pays for its longest
        row), from the next `_LOOKAHEAD` batches' worth of requests only, so that none is
        passed over for long. The others keep their places."""
        first = self._queue.popleft()
        rows = first.rows
        scanned = [
            self._queue.popleft()
            for _ in range(min(len(self._queue), self.max_batch_size * _LOOKAHEAD))
        ]
        candidates = [waiting for waiting in scanned if waiting.heads == first.heads]
        if self.group_by_length and rows + sum(w.rows for w in candidates) > self.max_batch_size:
            candidates.sort(key=lambda waiting: abs(waiting.batch.length - first.batch.length))
        taken = [first]
        for waiting in candidates:
            if rows + waiting.rows > self.max_batch_size:
                if self.group_by_length:
                    continue  # a shorter one may still fit
                break
            taken.append(waiting)
            rows += waiting.rows
        chosen = set(taken)
        self._queue.extendleft(reversed([w for w in scanned if w not in chosen]))
        self._queued_texts -= rows
        if not self._queue and self._wakeup is not None:
            self._wakeup.clear()
        return taken

    async def _run(self, taken: list[_Waiting]) -> None:
        live = [waiting for waiting in taken if not waiting.future.done()]
        if not live:
            return
        started = time.perf_counter()
        try:
            merged = self.merge([waiting.batch for waiting in live])
            computed = await self.runner.run(merged, live[0].heads)
        except (Exception, asyncio.CancelledError) as exc:  # cancelled: the batcher is closing
            failure = ModelNotReady() if isinstance(exc, asyncio.CancelledError) else exc
            for waiting in live:
                if not waiting.future.done():
                    waiting.future.set_exception(failure)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self.ms_per_text = smoothed(self.ms_per_text, computed.inference_ms / merged.rows)
        outputs = computed.outputs
        row = 0
        for waiting in live:
            rows, length = waiting.batch.rows, waiting.batch.length
            if not waiting.future.done():
                heads = outputs.heads
                waiting.future.set_result(
                    Computed(
                        GraphOutputs(
                            probabilities=outputs.probabilities[row : row + rows],  # (b, C)
                            attention=outputs.attention[row : row + rows, :length],  # (b, t)
                            heads=None
                            if heads is None
                            else heads[row : row + rows, :, :, :length, :length],
                        ),
                        queue_ms=(started - waiting.queued_at) * 1000.0,
                        inference_ms=computed.inference_ms,
                    )
                )
            row += rows

    def merge(self, batches: list[PaddedBatch]) -> PaddedBatch:
        """Pads every batch once to the longest row: (sum of b, max of t)."""
        if len(batches) == 1:
            return batches[0]
        rows = sum(b.rows for b in batches)
        length = max(b.length for b in batches)
        input_ids = np.full((rows, length), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((rows, length), dtype=np.int64)
        start = 0
        for b in batches:
            input_ids[start : start + b.rows, : b.length] = b.input_ids
            attention_mask[start : start + b.rows, : b.length] = b.attention_mask
            start += b.rows
        return PaddedBatch(input_ids=input_ids, attention_mask=attention_mask)
