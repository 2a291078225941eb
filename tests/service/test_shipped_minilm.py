"""The shipped minilm-attention model: its int8 figures, and word-level answers over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from attnserve.artifact.manifest import Manifest
from tests.conftest import WORD_MODEL

NAME = "minilm-attention"
TEXT = "The battery life is unbelievably great but the screen is awful"


@pytest.fixture(scope="module")
def manifest(shipped_repository: Path) -> Manifest:
    return Manifest.read(shipped_repository / NAME / "1")


def test_static_int8_stays_within_half_a_point_of_fp32_and_agrees_on_97_percent(
    manifest: Manifest,
) -> None:
    quantization = manifest.quantization

    assert quantization is not None
    assert quantization.method.startswith("ONNX Runtime static quantisation")
    assert quantization.fp32_test_accuracy - quantization.int8_test_accuracy <= 0.005
    # exported with --min-agreement 0.97: static ranges move 5 borderline labels of 200
    assert quantization.agreement >= 0.97
    assert quantization.int8_bytes < 0.7 * quantization.fp32_bytes
    assert max(manifest.parity.max_abs_diff.values()) <= 1e-4
    assert (manifest.tokenization, manifest.special_tokens) == ("wordpieces", ["[CLS]", "[SEP]"])


def test_the_named_route_answers_in_words(client: TestClient) -> None:
    response = client.post(f"/v1/models/{NAME}/predict", json={"text": TEXT})

    assert response.status_code == 200
    [prediction] = response.json()["predictions"]
    tokens = prediction["tokens"]
    # "unbelievably" is several word pieces, answered as one word
    assert [t["text"] for t in tokens] == TEXT.split()
    assert all(TEXT[t["start"] : t["end"]] == t["text"] for t in tokens)
    assert sum(t["attention"] for t in tokens) == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize(
    "text",
    [
        TEXT,
        "Ce café est délicieux, naïve crème brûlée",
        "Love it 😍🔥 cafe\u0301 works",
        "这个手机很好用",
        "המוצר הזה מעולה really",
    ],
)
def test_pieces_are_the_word_pieces_read_and_sum_into_the_words(
    client: TestClient, text: str
) -> None:
    response = client.post(f"/v1/models/{NAME}/predict", json={"text": text, "detail": "pieces"})

    assert response.status_code == 200
    [prediction] = response.json()["predictions"]
    tokens, pieces = prediction["tokens"], prediction["pieces"]
    assert len(pieces) >= len(tokens)
    assert all(text[p["start"] : p["end"]] == p["text"] for p in pieces)
    assert sum(p["attention"] for p in pieces) == pytest.approx(1, abs=1e-5)
    # Each word's weight is the sum of the pieces inside its span.
    for token in tokens:
        inside = [p for p in pieces if token["start"] <= p["start"] < token["end"]]
        assert inside, token
        assert sum(p["attention"] for p in inside) == pytest.approx(token["attention"], abs=1e-5)


def test_pieces_of_a_long_word_are_its_parts(client: TestClient) -> None:
    response = client.post(
        f"/v1/models/{NAME}/predict", json={"text": "unbelievably", "detail": "pieces"}
    )

    [prediction] = response.json()["predictions"]
    pieces = [p["text"] for p in prediction["pieces"]]
    assert len(pieces) > 1 and "".join(pieces) == "unbelievably"
    plain = client.post(f"/v1/models/{NAME}/predict", json={"text": "ok"}).json()
    assert plain["predictions"][0]["pieces"] is None


def test_a_word_level_models_pieces_are_its_tokens(client: TestClient) -> None:
    response = client.post(
        f"/v1/models/{WORD_MODEL}/predict", json={"text": TEXT, "detail": "pieces"}
    )

    [prediction] = response.json()["predictions"]
    assert prediction["pieces"] == prediction["tokens"]
