"""The tensors built from a typed answer: padding, offsets, and no attention output for a
model without attention."""

from __future__ import annotations

from attnserve.service.oip.signature import output_tensors, to_tensors
from attnserve.service.schemas import Prediction, PredictResponse, Token

LABELS = ["negative", "positive"]


def _prediction(label: str, spans: list[tuple[int, int]], attention: float | None) -> Prediction:
    return Prediction(
        label=label,
        score=0.75,
        probabilities={"negative": 0.25, "positive": 0.75}
        if label == "positive"
        else {"negative": 0.75, "positive": 0.25},
        tokens=[Token(text="x", start=s, end=e, attention=attention) for s, e in spans],
        truncated=False,
    )


def test_a_model_without_attention_has_no_attention_output() -> None:
    response = PredictResponse(
        model="lstm",
        version="1",
        predictions=[
            _prediction("positive", [(0, 4), (5, 9)], None),
            _prediction("negative", [(0, 3)], None),
        ],
    )

    tensors = {tensor.name: tensor for tensor in to_tensors(response, LABELS, has_attention=False)}

    assert list(tensors) == [t.name for t in output_tensors(LABELS, has_attention=False)]
    assert "attention" not in tensors
    assert tensors["probabilities"].json_data() == [0.25, 0.75, 0.75, 0.25]
    assert tensors["token_start"].json_data() == [0, 5, 0, -1]
    assert tensors["token_end"].json_data() == [4, 9, 3, -1]
    assert tensors["token_end"].shape == [2, 2]
    assert tensors["label"].binary_data() == b"\x08\x00\x00\x00positive\x08\x00\x00\x00negative"
    assert tensors["truncated"].binary_data() == b"\x00\x00"
