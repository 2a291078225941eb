"""The session runner on the shipped model: output shapes, and attention confined to real tokens."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest

from attnserve.artifact.calibration import temperature_scaled
from attnserve.artifact.graph import PaddedBatch
from attnserve.service.inference import Computed, GraphOutputs, SessionRunner
from attnserve.service.loading import LoadedModel

TEXTS = ["fine", "The screen is bright and the battery lasts all day", "Never again!"]


def _batch(model: LoadedModel) -> PaddedBatch:
    return model.encoder.pad(model.encoder.encode(TEXTS))


def test_probabilities_and_attention_are_distributions_over_real_tokens(
    loaded_model: LoadedModel,
) -> None:
    batch = _batch(loaded_model)

    output = SessionRunner(loaded_model.session).compute(batch)

    rows, length = batch.input_ids.shape
    assert output.probabilities.shape == (rows, len(loaded_model.manifest.labels))
    assert output.attention.shape == (rows, length)
    assert output.probabilities.dtype == output.attention.dtype == np.float32
    np.testing.assert_allclose(output.probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(output.attention.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(output.attention[batch.attention_mask == 0] == 0.0)
    assert output.heads is None


@pytest.mark.anyio
async def test_run_in_a_worker_thread_equals_computing_here(loaded_model: LoadedModel) -> None:
    sizes: list[int] = []
    runner = SessionRunner(loaded_model.session, sizes.append)
    batch = _batch(loaded_model)

    threaded = await runner.run(batch)
    direct = runner.compute(batch)

    np.testing.assert_array_equal(threaded.outputs.probabilities, direct.probabilities)
    np.testing.assert_array_equal(threaded.outputs.attention, direct.attention)
    assert threaded.queue_ms == 0.0 and threaded.inference_ms > 0.0
    assert sizes == [3, 3]


@pytest.mark.anyio
async def test_a_failing_run_raises_in_its_caller_and_the_runner_goes_on(
    loaded_model: LoadedModel,
) -> None:
    runner = SessionRunner(loaded_model.session, threads=1)
    batch = _batch(loaded_model)
    out_of_vocabulary = PaddedBatch(
        input_ids=np.full_like(batch.input_ids, loaded_model.encoder.vocab_size + 10),
        attention_mask=batch.attention_mask,
    )

    with pytest.raises(Exception, match=r"(?i)out of|bounds|invalid"):
        await runner.run(out_of_vocabulary)
    answered = await runner.run(batch)

    np.testing.assert_array_equal(
        answered.outputs.probabilities, runner.compute(batch).probabilities
    )
    await runner.close()


@pytest.mark.anyio
async def test_concurrent_runs_each_get_their_own_answer_from_a_bounded_set_of_threads(
    loaded_model: LoadedModel,
) -> None:
    runner = SessionRunner(loaded_model.session, threads=2)
    batches = [loaded_model.encoder.pad(loaded_model.encoder.encode([text])) for text in TEXTS * 4]

    computed = await asyncio.gather(*(runner.run(batch) for batch in batches))

    for batch, answer in zip(batches, computed, strict=True):
        np.testing.assert_array_equal(
            answer.outputs.probabilities, runner.compute(batch).probabilities
        )
    assert 1 <= len(runner.workers) <= 2
    workers = runner.workers
    await runner.close()
    for worker in workers:
        worker.join(timeout=5)
        assert not worker.is_alive()


class ThreadRecordingRunner(SessionRunner):
    """The real session runner, recording the thread each batch computed in."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.threads_computing: list[str] = []

    def compute(self, batch: PaddedBatch, heads: bool = False) -> GraphOutputs:
        self.threads_computing.append(threading.current_thread().name)
        return super().compute(batch, heads)


def _one_text(model: LoadedModel) -> PaddedBatch:
    return model.encoder.pad(model.encoder.encode(TEXTS[1:2]))


async def _measured(
    model: LoadedModel, limit_ms: float
) -> tuple[ThreadRecordingRunner, PaddedBatch, Computed]:
    """A runner with that inline limit, a one-text batch, and its answer from the runner's
    thread (which measures the model's time for one text)."""
    runner = ThreadRecordingRunner(model.session, inline_below_ms=limit_ms)
    batch = _one_text(model)
    assert runner.run_now(batch) is None  # nothing measured yet
    return runner, batch, await runner.run(batch)


@pytest.mark.anyio
async def test_a_text_of_a_model_under_the_inline_limit_computes_now_on_the_calling_thread(
    loaded_model: LoadedModel,
) -> None:
    runner, batch, threaded = await _measured(loaded_model, 60_000.0)

    now = runner.run_now(batch)

    assert now is not None
    assert runner.one_text_ms is not None and runner.one_text_ms > 0.0
    assert runner.threads_computing == ["inference", threading.current_thread().name]
    np.testing.assert_array_equal(threaded.outputs.probabilities, now.outputs.probabilities)
    np.testing.assert_array_equal(threaded.outputs.attention, now.outputs.attention)
    assert now.queue_ms == 0.0 and now.inference_ms > 0.0
    assert runner.run_now(_batch(loaded_model)) is None  # three texts: not now
    await runner.close()


@pytest.mark.anyio
@pytest.mark.parametrize("limit_ms", [0.0, 1e-6])
async def test_a_text_of_a_model_over_the_inline_limit_is_not_computed_now(
    loaded_model: LoadedModel, limit_ms: float
) -> None:
    runner, batch, _ = await _measured(loaded_model, limit_ms)

    assert runner.run_now(batch) is None
    assert runner.threads_computing == ["inference"]
    await runner.close()


@pytest.mark.anyio
async def test_a_text_is_not_computed_now_while_a_thread_computes(
    loaded_model: LoadedModel,
) -> None:
    runner, batch, _ = await _measured(loaded_model, 60_000.0)
    large = loaded_model.encoder.pad(loaded_model.encoder.encode(TEXTS * 200))

    computing = asyncio.ensure_future(runner.run(large))
    await asyncio.sleep(0)  # handed to a thread
    assert runner.run_now(batch) is None
    await computing
    assert runner.run_now(batch) is not None
    await runner.close()


def test_probabilities_come_back_calibrated_by_the_temperature(loaded_model: LoadedModel) -> None:
    batch = _batch(loaded_model)

    raw = SessionRunner(loaded_model.session).compute(batch)
    scaled = SessionRunner(loaded_model.session, temperature=2.5).compute(batch)

    np.testing.assert_allclose(
        scaled.probabilities, temperature_scaled(raw.probabilities, 2.5), atol=1e-7
    )
    assert np.all(scaled.probabilities.max(axis=1) < raw.probabilities.max(axis=1))
