"""Every architecture, as shipped in model_repository/, answered through the HTTP API."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from attnserve.artifact.manifest import Manifest
from attnserve.models.architectures import ARCHITECTURES
from attnserve.service.registry import find_models

SHIPPED = Path(__file__).resolve().parent.parent / "model_repository"
TEXTS = ["The battery life is great but the screen is awful", "Loved it!", "worst."]


def test_every_architecture_is_shipped_under_its_own_name() -> None:
    assert set(find_models(SHIPPED)) >= set(ARCHITECTURES)


def test_the_repository_declares_the_default(client: TestClient) -> None:
    listed = client.get("/v1/models").json()

    # the most accurate model answers POST /v1/predict
    assert listed["default_model"] == "minilm-attention"
    assert {model["name"] for model in listed["models"]} >= set(ARCHITECTURES)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_each_architecture_answers_with_its_invariants(client: TestClient, name: str) -> None:
    response = client.post(f"/v1/models/{name}/predict", json={"texts": TEXTS})
    info = client.get(f"/v1/models/{name}").json()

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], info["architecture"]) == (name, name)
    for text, prediction in zip(TEXTS, body["predictions"], strict=True):
        assert math.isclose(sum(prediction["probabilities"].values()), 1.0, abs_tol=1e-5)
        assert prediction["heads"] is None
        weights = [token["attention"] for token in prediction["tokens"]]
        for token in prediction["tokens"]:
            assert text[token["start"] : token["end"]] == token["text"]
        if ARCHITECTURES[name].has_attention:
            assert math.isclose(sum(weights), 1.0, abs_tol=1e-5)
            assert all(weight >= 0.0 for weight in weights)
        else:
            assert weights == [None] * len(weights)
    alone = client.post(f"/v1/models/{name}/predict", json={"text": TEXTS[1]}).json()
    manifest = Manifest.read(find_models(SHIPPED)[name])
    if manifest.quantization is None:
        for key in ("label", "tokens"):
            assert alone["predictions"][0][key] == body["predictions"][1][key]
    else:
        # dynamic int8 scales activations over the whole batch: same label and words, and
        # weights that differ a little with the batch (README, minilm-attention)
        one, batched = alone["predictions"][0], body["predictions"][1]
        assert one["label"] == batched["label"]
        assert [t["text"] for t in one["tokens"]] == [t["text"] for t in batched["tokens"]]
        gaps = [
            abs(a["attention"] - b["attention"])
            for a, b in zip(one["tokens"], batched["tokens"], strict=True)
        ]
        assert max(gaps) < 0.1
    assert info["metrics"]["test_accuracy"] > 0.7
    if manifest.faithfulness is None:
        # minilm-attention v1 was exported before faithfulness was measured at export
        assert name == "minilm-attention"
        return
    faithfulness: dict[str, Any] = info["faithfulness"]
    assert faithfulness["sentences"] == 200
    assert ("attention" in faithfulness["aopc"]) == ARCHITECTURES[name].has_attention


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_an_empty_text_gets_the_documented_answer(client: TestClient, name: str) -> None:
    response = client.post(f"/v1/models/{name}/predict", json={"texts": ["fine", " "]})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "empty_text"
    assert response.json()["error"]["details"] == {"indices": [1]}


def test_the_transformer_returns_every_layer_and_head_when_asked(client: TestClient) -> None:
    text = TEXTS[0]
    response = client.post("/v1/models/transformer/predict", json={"text": text, "detail": "heads"})
    plain = client.post("/v1/models/transformer/predict", json={"text": text})

    assert response.status_code == 200, response.text
    [prediction] = response.json()["predictions"]
    heads = prediction["heads"]
    tokens = len(prediction["tokens"])
    assert (len(heads), len(heads[0])) == (2, 4)
    for layer in heads:
        for head in layer:
            assert len(head) == tokens
            for row in head:
                assert len(row) == tokens
                assert math.isclose(sum(row), 1.0, abs_tol=1e-5)
    [plain_prediction] = plain.json()["predictions"]
    assert plain_prediction["heads"] is None
    assert plain_prediction["tokens"] == prediction["tokens"]


def test_heads_from_a_model_without_them_is_a_clear_422(client: TestClient) -> None:
    response = client.post(
        "/v1/models/bilstm-additive/predict", json={"text": "great", "detail": "heads"}
    )

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "detail_unavailable",
            "message": "Model 'bilstm-additive' has no 'heads' output; the models listing "
            "'heads' among their outputs in GET /v1/models can answer it.",
            "details": {"detail": "heads", "model": "bilstm-additive"},
        }
    }


def test_heads_past_their_limit_are_413_with_the_figures(client: TestClient) -> None:
    long_text = " ".join(["good"] * 200)  # truncated to the model's 128 tokens
    nine = client.post(
        "/v1/models/transformer/predict", json={"texts": [long_text] * 9, "detail": "heads"}
    )
    eight = client.post(
        "/v1/models/transformer/predict", json={"texts": [long_text] * 8, "detail": "heads"}
    )

    # 2 layers x 4 heads x 128 x 128 weights a text: eight fit in 1,048,576, nine do not
    assert nine.status_code == 413
    assert nine.json()["error"]["code"] == "heads_too_large"
    assert nine.json()["error"]["details"] == {"values": 9 * 8 * 128 * 128, "limit": 1048576}
    assert eight.status_code == 200
    assert len(eight.json()["predictions"][0]["heads"][0][0]) == 128
