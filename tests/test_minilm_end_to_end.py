"""Fine-tune the pretrained encoder a few steps, export it int8, serve it, ask it in words.

The real path of `minilm-attention`: `attnserve train` (the pretrained MiniLM from its
package, a few steps on a slice), `attnserve export --int8` (dynamo export, parity with
PyTorch, int8 quantisation), `attnserve serve`, and word-level answers over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import onnx
import pytest

from attnserve.export.gelu import DESCRIPTION as GELU_FUSION
from bench.common import ATTNSERVE
from tests.conftest import attnserve_serve

ROOT = Path(__file__).resolve().parent.parent
NAME = "minilm-tiny"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}

# text -> the words the answer must be given in: accents (composed and decomposed), a word
# split into pieces, emoji, CJK (one word per character) and right-to-left Arabic
WORDS = {
    "Café crème was unbelievably good": ["Café", "crème", "was", "unbelievably", "good"],
    "Cafe\u0301 fine 👍👍 ok": ["Cafe\u0301", "fine", "👍👍", "ok"],
    "很好吃, really!": ["很", "好", "吃", ",", "really", "!"],
    "الطعام كان رائعا جدا": ["الطعام", "كان", "رائعا", "جدا"],
}


def _attnserve(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [ATTNSERVE, *args], capture_output=True, text=True, env=env or ENV, cwd=ROOT, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("minilm")
    run_dir, repository = work / "run", work / "repository"
    # 80 sentences of each file: 128 to train on, i.e. 8 steps of 16
    _attnserve(
        "train",
        "--architecture",
        "minilm-attention",
        "--run-dir",
        str(run_dir),
        "--limit-per-source",
        "80",
        "--max-epochs",
        "1",
    )
    # a few steps leave the model near chance, so int8's bounds here are loose; the shipped
    # model's figures are checked against the real bounds in tests/service/test_shipped_minilm
    _attnserve(
        "export",
        str(run_dir),
        "--name",
        NAME,
        "--repository",
        str(repository),
        "--int8",
        "--max-accuracy-drop",
        "0.2",
        "--min-agreement",
        "0.7",
    )
    return repository


@pytest.fixture(scope="module")
def server(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("server") / "log"
    with attnserve_serve(repository, log, HF_HUB_OFFLINE="1") as url:
        yield url


def _predict(server: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{server}/v1/models/{NAME}/predict", json=body, timeout=60)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_the_manifest_records_word_pieces_int8_and_parity(repository: Path) -> None:
    manifest = json.loads((repository / NAME / "1" / "manifest.json").read_text("utf-8"))

    assert manifest["architecture"] == "minilm-attention"
    assert manifest["tokenization"] == "wordpieces"
    assert manifest["special_tokens"] == ["[CLS]", "[SEP]"]
    assert manifest["max_tokens"] == 256
    assert max(manifest["parity"]["max_abs_diff"].values()) <= 1e-4
    quantization = manifest["quantization"]
    assert quantization["int8_bytes"] < 0.7 * quantization["fp32_bytes"]
    assert not (repository / NAME / "1" / "model.fp32.onnx").exists()
    assert manifest["graph_optimization"] == GELU_FUSION
    graph = onnx.load(str(repository / NAME / "1" / "model.onnx"))
    operators = Counter(node.op_type for node in graph.graph.node)
    assert (operators["BiasGelu"], operators["Erf"]) == (6, 0)  # one a layer


def test_answers_are_words_with_offsets_and_attention_summing_to_one(server: str) -> None:
    texts = list(WORDS)
    body = _predict(server, {"texts": texts})

    assert body["model"] == NAME
    for text, prediction in zip(texts, body["predictions"], strict=True):
        tokens = prediction["tokens"]
        assert [t["text"] for t in tokens] == WORDS[text]
        assert all(text[t["start"] : t["end"]] == t["text"] for t in tokens)
        assert sum(t["attention"] for t in tokens) == pytest.approx(1, abs=1e-5)
        assert all(t["attention"] > 0 for t in tokens)
        assert prediction["truncated"] is False


def test_a_long_text_is_cut_at_256_word_pieces_and_flagged(server: str) -> None:
    text = " ".join(["good"] * 300)

    [prediction] = _predict(server, {"text": text})["predictions"]

    assert prediction["truncated"] is True
    assert len(prediction["tokens"]) == 256 - 2  # [CLS] and [SEP] take two places
    assert sum(t["attention"] for t in prediction["tokens"]) == pytest.approx(1, abs=1e-5)


def test_a_text_without_words_is_empty_despite_the_special_tokens(server: str) -> None:
    response = httpx.post(f"{server}/v1/models/{NAME}/predict", json={"texts": ["fine", " \t"]})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "empty_text"
    assert response.json()["error"]["details"] == {"indices": [1]}
