"""The tensors built from the predictor's arrays: padding, offsets, and no attention output for
a model without attention."""

from __future__ import annotations

import numpy as np
import pytest

from attnserve.service.oip.signature import output_names, output_tensors, to_tensors
from attnserve.service.predictions import Predictions, Spans, Timings

LABELS = ["negative", "positive"]


def test_a_model_without_attention_has_no_attention_output() -> None:
    predictions = Predictions(
        model="lstm",
        version="1",
        labels=LABELS,
        texts=["good food", "bad"],
        probabilities=np.array([[0.25, 0.75], [0.75, 0.25]], dtype=np.float32),
        words=[Spans([(0, 4), (5, 9)], None), Spans([(0, 3)], None)],
        truncated=[False, False],
        readable=[1.0, 0.0],
        timings=Timings(0.0, 0.0, 0.0, 0.0),
    )

    tensors = {t.name: t for t in to_tensors(predictions, has_attention=False)}

    assert list(tensors) == [t.name for t in output_tensors(LABELS, has_attention=False)]
    assert "attention" not in tensors
    assert tensors["probabilities"].json_data() == [0.25, 0.75, 0.75, 0.25]
    assert tensors["token_start"].json_data() == [0, 5, 0, -1]
    assert tensors["token_end"].json_data() == [4, 9, 3, -1]
    assert tensors["token_end"].shape == [2, 2]
    assert tensors["label"].binary_data() == b"\x08\x00\x00\x00positive\x08\x00\x00\x00negative"
    assert tensors["truncated"].binary_data() == b"\x00\x00"
    assert tensors["readable"].json_data() == [1.0, 0.0]


@pytest.mark.parametrize("has_attention", [True, False])
def test_output_names_are_the_declared_outputs_in_order(has_attention: bool) -> None:
    declared = output_tensors(LABELS, has_attention)

    assert output_names(has_attention) == [tensor.name for tensor in declared]
