"""The predictor outside HTTP: batched and unbatched paths agree, limits come first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attnserve.artifact.graph import PaddedBatch
from attnserve.service.errors import EmptyText, TextTooLong, TooManyTexts
from attnserve.service.inference import GraphOutputs, SessionRunner
from attnserve.service.loading import LoadedModel, load_artifact
from attnserve.service.predictor import Limits, Predictor
from attnserve.service.providers import CPU, SessionConfig
from attnserve.service.registry import build_predictor
from attnserve.service.v1_json import predict_response_json
from tests.conftest import cpu_settings

TEXTS = ["Great value, works perfectly.", "Stopped charging after a week", "meh"]


class CountingRunner(SessionRunner):
    """The real session runner, counting the batches it ran."""

    runs = 0

    def compute(self, batch: PaddedBatch, heads: bool = False) -> GraphOutputs:
        self.runs += 1
        return super().compute(batch, heads)


@pytest.mark.anyio
async def test_the_batched_and_the_unbatched_chain_give_the_same_response(
    loaded_model: LoadedModel,
) -> None:
    repository = loaded_model.directory.parent.parent
    batched = build_predictor(loaded_model, cpu_settings(repository))
    alone = build_predictor(loaded_model, cpu_settings(repository, batching=False))

    served = await batched.predict(TEXTS)
    direct = await alone.predict(TEXTS)
    await batched.close()

    assert predict_response_json(served) == predict_response_json(direct)
    assert list(served.timings.stages()) == ["tokenize", "queue", "inference", "postprocess"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("texts", "error"),
    [
        (["ok"] * 4, TooManyTexts),
        (["ok", "x" * 41], TextTooLong),
        (["ok", "  "], EmptyText),
    ],
    ids=["count", "chars", "empty"],
)
async def test_a_refused_request_runs_no_inference(
    loaded_model: LoadedModel, texts: list[str], error: type[Exception]
) -> None:
    runner = CountingRunner(loaded_model.session)
    predictor = Predictor(
        loaded_model, runner, Limits(max_texts=3, max_chars=40, max_heads_values=10**6)
    )

    with pytest.raises(error):
        await predictor.predict(texts)

    assert runner.runs == 0


@pytest.mark.anyio
async def test_all_texts_of_a_request_run_as_one_padded_batch(loaded_model: LoadedModel) -> None:
    runner = CountingRunner(loaded_model.session)
    predictor = Predictor(
        loaded_model, runner, Limits(max_texts=64, max_chars=5000, max_heads_values=10**6)
    )

    await predictor.predict(TEXTS)

    assert runner.runs == 1


@pytest.mark.anyio
async def test_a_model_without_attention_answers_null_weights(model_copy: Path) -> None:
    manifest_path = model_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text("utf-8")) | {"has_attention": False}
    manifest_path.write_text(json.dumps(manifest), "utf-8")
    model = load_artifact(model_copy, SessionConfig(providers=(CPU,), exact=True))
    predictor = build_predictor(model, cpu_settings(model_copy.parent.parent, batching=False))

    predictions = await predictor.predict(TEXTS)

    for text, words in zip(TEXTS, predictions.words, strict=True):
        assert words.spans
        assert words.weights is None
        assert all(text[start:end].strip() == text[start:end] for start, end in words.spans)
    answer = json.loads(predict_response_json(predictions))
    for text, prediction in zip(TEXTS, answer["predictions"], strict=True):
        assert all(token["attention"] is None for token in prediction["tokens"])
        assert all(text[t["start"] : t["end"]] == t["text"] for t in prediction["tokens"])
