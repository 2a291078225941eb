"""Train a small model on a slice of the real data, export it, serve it, ask it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.common import ATTNSERVE
from tests.conftest import attnserve_serve

ROOT = Path(__file__).resolve().parent.parent
DATA = [
    ROOT / "data/sentiment-labelled-sentences/amazon_cells_labelled.txt",
    ROOT / "data/sentiment-labelled-sentences/yelp_labelled.txt",
]
TEXT = "The battery life is great but the screen is awful"


def _attnserve(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [ATTNSERVE, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("e2e")
    run_dir, repository = work / "run", work / "repository"
    _attnserve(
        "train",
        *map(str, DATA),
        "--run-dir",
        str(run_dir),
        "--limit-per-source",
        "150",
        "--max-epochs",
        "2",
    )
    _attnserve("export", str(run_dir), "--name", "tiny", "--repository", str(repository))
    return repository


@pytest.fixture(scope="module")
def server(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("server") / "log"
    with attnserve_serve(repository, log) as url:
        yield url


def test_trained_exported_model_is_served_with_attention(server: str) -> None:
    response = httpx.post(f"{server}/v1/predict", json={"text": TEXT})

    assert response.status_code == 200
    body = response.json()
    assert (body["model"], body["version"]) == ("tiny", "1")
    [prediction] = body["predictions"]
    assert prediction["label"] in {"negative", "positive"}
    assert sum(prediction["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert prediction["score"] == prediction["probabilities"][prediction["label"]]
    tokens = prediction["tokens"]
    assert [t["text"] for t in tokens] == [TEXT[t["start"] : t["end"]] for t in tokens]
    assert [t["text"] for t in tokens] == TEXT.split()
    assert sum(t["attention"] for t in tokens) == pytest.approx(1, abs=1e-5)
    assert prediction["truncated"] is False


def test_evaluate_reports_the_recorded_test_split(repository: Path) -> None:
    output = _attnserve("evaluate", str(repository / "tiny" / "1"), "--json")

    report = json.loads(output)
    manifest = json.loads((repository / "tiny" / "1" / "manifest.json").read_text())
    sizes = manifest["training"]["split"]["sizes"]
    assert sum(map(sum, report["test"]["confusion"])) == sizes["test"] == report["test"]["examples"]
    assert report["validation"]["examples"] == sizes["validation"]
    # the same predictions through ONNX Runtime as through PyTorch at training time
    assert report["test"]["accuracy"] == pytest.approx(manifest["metrics"]["test_accuracy"])


def test_predict_command_answers_without_a_server(repository: Path) -> None:
    env = {**os.environ, "ATTNSERVE_MODEL_REPOSITORY": str(repository)}
    body = json.loads(_attnserve("predict", "--json", TEXT, env=env))

    [prediction] = body["predictions"]
    assert [t["text"] for t in prediction["tokens"]] == TEXT.split()
