"""The session runner on the shipped model: output shapes, and attention confined to real tokens."""

from __future__ import annotations

import numpy as np
import pytest

from attnserve.artifact.graph import PaddedBatch
from attnserve.service.inference import SessionRunner
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
