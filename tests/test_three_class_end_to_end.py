"""Bring your own data: a 3-class CSV with string labels under its own column names, trained
and exported through the command, served, and its labels in /v1, /v2, the client and the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from attnserve.cli.main import app
from attnserve.service.app import create_app
from attnserve_client import Client
from tests.conftest import cpu_settings
from tests.live_server import serve
from tests.three_class import LABEL_COLUMN, TEXT_COLUMN, write_three_class_csv

# the order given to `train --labels`: the model's probabilities come in it
ORDER = ["positive", "neutral", "negative"]
OBVIOUS = {
    "positive": "Great and lovely, the screen is excellent",
    "neutral": "The food was okay and ordinary",
    "negative": "Awful battery, broken and useless",
}
runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The repository the 3-class model was exported to, and what `train` printed."""
    work = tmp_path_factory.mktemp("three")
    data = write_three_class_csv(work / "reviews.csv", per_label=40)
    run_dir, repository = work / "run", work / "repository"
    done = runner.invoke(
        app,
        [
            *("train", str(data), "--run-dir", str(run_dir), "--max-epochs", "12"),
            *("--text-column", TEXT_COLUMN, "--label-column", LABEL_COLUMN),
            *("--labels", ",".join(ORDER)),
        ],
    )
    assert done.exit_code == 0, done.output
    exported = runner.invoke(
        app, ["export", str(run_dir), "--name", "three", "--repository", str(repository)]
    )
    assert exported.exit_code == 0, exported.output
    return repository, done.stdout


@pytest.fixture(scope="module")
def server(trained: tuple[Path, str]) -> Iterator[str]:
    with serve(create_app(cpu_settings(trained[0]))) as url:
        yield url


def test_train_reports_balance_scores_by_label_and_confusion(trained: tuple[Path, str]) -> None:
    repository, printed = trained
    manifest = json.loads((repository / "three" / "1" / "manifest.json").read_text("utf-8"))
    sizes = manifest["training"]["split"]["sizes"]
    lines = printed.splitlines()

    balance = lines.index("class balance (train / validation / test):")
    counts = {line.split()[0]: line.split()[1:] for line in lines[balance + 1 : balance + 4]}
    assert list(counts) == ORDER
    for column, side in ((0, "train"), (2, "validation"), (4, "test")):
        assert sum(int(each[column]) for each in counts.values()) == sizes[side]
    by_label = lines.index("test by label:")
    assert lines[by_label + 1].split() == ["label", "precision", "recall", "F1", "support"]
    assert [line.split()[0] for line in lines[by_label + 2 : by_label + 5]] == ORDER
    assert f"accuracy {manifest['metrics']['test_accuracy']:.4f}" in lines[by_label + 5]
    confusion = lines.index("confusion matrix on test (rows: true, columns: predicted)")
    assert lines[confusion + 1].split() == ORDER
    assert len(lines) == confusion + 5


def test_the_manifest_records_the_labels_and_columns(trained: tuple[Path, str]) -> None:
    manifest = json.loads((trained[0] / "three" / "1" / "manifest.json").read_text("utf-8"))

    assert manifest["labels"] == ORDER
    assert manifest["outputs"][0]["shape"] == ["batch", 3]
    training = manifest["training"]
    assert (training["text_column"], training["label_column"]) == ("review", "sentiment")


def test_evaluate_rebuilds_the_split_through_the_recorded_columns(
    trained: tuple[Path, str],
) -> None:
    done = runner.invoke(app, ["evaluate", str(trained[0] / "three" / "1"), "--json"])

    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["labels"] == ORDER
    assert len(report["test"]["confusion"]) == 3


def test_v1_answers_with_the_three_labels(server: str) -> None:
    answer = httpx.post(f"{server}/v1/predict", json={"texts": list(OBVIOUS.values())}).json()
    models = httpx.get(f"{server}/v1/models").json()

    assert models["models"][0]["labels"] == ORDER
    for expected, prediction in zip(OBVIOUS, answer["predictions"], strict=True):
        assert list(prediction["probabilities"]) == ORDER
        assert prediction["label"] == expected
        assert prediction["score"] == max(prediction["probabilities"].values())


def test_v2_probabilities_are_b_by_3_in_the_labels_order(server: str) -> None:
    texts = list(OBVIOUS.values())
    body = {"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": texts}]}
    metadata = httpx.get(f"{server}/v2/models/three").json()
    answer = httpx.post(f"{server}/v2/models/three/infer", json=body).json()
    v1 = httpx.post(f"{server}/v1/predict", json={"texts": texts}).json()["predictions"]

    outputs: dict[str, Any] = {output["name"]: output for output in answer["outputs"]}
    assert outputs["probabilities"]["shape"] == [3, 3]
    assert outputs["label"]["data"] == list(OBVIOUS)
    rows = outputs["probabilities"]["data"]
    expected = [prediction["probabilities"][label] for prediction in v1 for label in ORDER]
    assert rows == pytest.approx(expected, abs=1e-6)
    declared = {output["name"]: output["shape"] for output in metadata["outputs"]}
    assert declared["probabilities"] == [-1, 3]


def test_the_client_and_the_cli_give_the_label_names(server: str, tmp_path: Path) -> None:
    with Client(server) as client:
        predictions = client.predict(list(OBVIOUS.values()))
        [model] = client.models().models
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(OBVIOUS.values()) + "\n", encoding="utf-8")
    done = runner.invoke(app, ["predict", "--url", server, "--file", str(source)])
    heatmap = runner.invoke(app, ["predict", "--url", server, OBVIOUS["neutral"]])

    assert model.labels == ORDER
    assert [p.label for p in predictions] == list(OBVIOUS)
    assert done.exit_code == heatmap.exit_code == 0, done.output + heatmap.output
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [record["label"] for record in records] == list(OBVIOUS)
    assert [list(record["probabilities"]) for record in records] == [ORDER] * 3
    assert heatmap.stdout.splitlines()[1].startswith("neutral ")
