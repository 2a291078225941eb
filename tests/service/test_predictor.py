"""The predictor outside HTTP: the service's and the tools' paths agree, limits come first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attnserve.artifact.tokenizer import PaddedBatch
from attnserve.service.errors import EmptyText, TextTooLong, TooManyTexts
from attnserve.service.inference import InferenceOutput, OnnxModelRunner
from attnserve.service.loading import LoadedModel, load_artifact
from attnserve.service.predictor import Predictor
from attnserve.service.providers import CPU, SessionConfig
from attnserve.service.settings import Settings
from tests.conftest import cpu_settings

TEXTS = ["Great value, works perfectly.", "Stopped charging after a week", "meh"]


class CountingRunner(OnnxModelRunner):
    """The real runner, counting the batches it ran."""

    runs = 0

    def run_sync(self, batch: PaddedBatch) -> InferenceOutput:
        self.runs += 1
        return super().run_sync(batch)


def _settings(loaded_model: LoadedModel, **overrides: int) -> Settings:
    return cpu_settings(loaded_model.directory.parent.parent, **overrides)


@pytest.mark.anyio
async def test_predict_and_predict_sync_give_the_same_response(loaded_model: LoadedModel) -> None:
    predictor = Predictor(loaded_model, _settings(loaded_model))

    served = await predictor.predict(TEXTS)
    tooled = predictor.predict_sync(TEXTS)

    assert served.response == tooled.response
    assert list(served.timings) == ["tokenize", "inference", "postprocess"]


@pytest.mark.parametrize(
    ("texts", "error"),
    [
        (["ok"] * 4, TooManyTexts),
        (["ok", "x" * 41], TextTooLong),
        (["ok", "  "], EmptyText),
    ],
    ids=["count", "chars", "empty"],
)
def test_a_refused_request_runs_no_inference(
    loaded_model: LoadedModel, texts: list[str], error: type[Exception]
) -> None:
    runner = CountingRunner(loaded_model.session)
    settings = _settings(loaded_model, max_texts_per_request=3, max_text_chars=40)
    predictor = Predictor(loaded_model, settings, runner)

    with pytest.raises(error):
        predictor.predict_sync(texts)

    assert runner.runs == 0


def test_all_texts_of_a_request_run_as_one_padded_batch(loaded_model: LoadedModel) -> None:
    runner = CountingRunner(loaded_model.session)
    predictor = Predictor(loaded_model, _settings(loaded_model), runner)

    predictor.predict_sync(TEXTS)

    assert runner.runs == 1


def test_a_model_without_attention_answers_null_weights(model_copy: Path) -> None:
    manifest_path = model_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text("utf-8")) | {"has_attention": False}
    manifest_path.write_text(json.dumps(manifest), "utf-8")
    model = load_artifact(model_copy, SessionConfig(providers=(CPU,), exact=True))

    result = Predictor(model, cpu_settings(model_copy.parent.parent)).predict_sync(TEXTS)

    for text, prediction in zip(TEXTS, result.response.predictions, strict=True):
        assert prediction.tokens
        assert all(token.attention is None for token in prediction.tokens)
        assert all(text[token.start : token.end] == token.text for token in prediction.tokens)
