"""Evaluation rebuilds the recorded split and scores it through ONNX Runtime."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from attnserve.artifact.calibration import expected_calibration_error
from attnserve.artifact.data import label_ids
from attnserve.artifact.manifest import Manifest
from attnserve.artifact.split import SplitMismatch, rebuild_split
from attnserve.cli.evaluation import BEHAVIOUR_SET, EvaluationReport, evaluate, load_behaviour
from attnserve.cli.main import app
from tests.conftest import REPO_ROOT, cpu_settings


@pytest.fixture(scope="module")
def report(shipped_model_dir: Path, shipped_repository: Path) -> EvaluationReport:
    return evaluate(shipped_model_dir, settings=cpu_settings(shipped_repository))


def test_the_recorded_split_is_rebuilt_and_scored(
    report: EvaluationReport, shipped_manifest: dict[str, Any]
) -> None:
    sizes = shipped_manifest["training"]["split"]["sizes"]

    assert (report.model, report.version) == (shipped_manifest["name"], shipped_manifest["version"])
    assert report.provider == "CPUExecutionProvider"
    for scores, side in ((report.test, "test"), (report.validation, "validation")):
        assert scores.examples == sizes[side] == sum(map(sum, scores.confusion))
        correct = sum(scores.confusion[i][i] for i in range(len(report.labels)))
        assert scores.accuracy == correct / scores.examples
        assert 0.0 <= scores.macro_f1 <= 1.0


def test_onnx_scores_match_the_figures_of_the_manifest(report: EvaluationReport) -> None:
    if report.calibration is not None:
        # the served probabilities as export measured them, on whatever CPU: an int8 graph's
        # answers once moved with the instruction set (AVX2 alone against AVX-512 VNNI)
        for scores, side in ((report.test, "test"), (report.validation, "validation")):
            recorded = report.calibration.ece_after[side]
            assert scores.calibration_error == pytest.approx(recorded, abs=1e-6), side
    if report.quantization is not None:
        # an int8 graph's own test accuracy was measured at export (the metrics are PyTorch's)
        assert report.test.accuracy == pytest.approx(report.quantization.int8_test_accuracy)
        return
    # ONNX and PyTorch agree to the parity tolerance, so at most a borderline text may flip.
    for scores, side in ((report.test, "test"), (report.validation, "validation")):
        assert abs(scores.accuracy - report.recorded[f"{side}_accuracy"]) <= 1 / scores.examples


def test_a_data_file_that_changed_is_refused_with_both_hashes(
    shipped_model_dir: Path, shipped_manifest: dict[str, Any], tmp_path: Path
) -> None:
    recorded = shipped_manifest["training"]["data"]
    paths = []
    for entry in recorded:
        copy = tmp_path / Path(entry["path"]).name
        shutil.copyfile(REPO_ROOT / entry["path"], copy)
        paths.append(copy)
    with paths[0].open("a", encoding="utf-8") as handle:
        handle.write("One more sentence.\t1\n")

    with pytest.raises(
        SplitMismatch,
        match=rf"^Data file {paths[0]} has sha256 [0-9a-f]{{64}}, "
        rf"the model was trained on {recorded[0]['path']} with sha256 "
        rf"{recorded[0]['sha256']}$",
    ):
        evaluate(shipped_model_dir, paths, cpu_settings(tmp_path))


def test_the_wrong_number_of_data_files_is_refused(
    shipped_model_dir: Path, shipped_manifest: dict[str, Any]
) -> None:
    recorded = shipped_manifest["training"]["data"]

    with pytest.raises(
        SplitMismatch,
        match=rf"^Got 0 data file\(s\), the model was trained on "
        rf"{len(recorded)}: ",
    ):
        evaluate(shipped_model_dir, [], cpu_settings(shipped_model_dir))


def test_a_split_that_differs_from_the_record_is_refused(model_copy: Path) -> None:
    manifest_path = model_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text("utf-8"))
    sizes = manifest["training"]["split"]["sizes"]
    manifest["training"]["split"]["sizes"] = sizes | {"test": sizes["test"] + 1}
    manifest_path.write_text(json.dumps(manifest), "utf-8")

    with pytest.raises(SplitMismatch, match="these are not the examples the model was trained"):
        evaluate(model_copy, settings=cpu_settings(model_copy))


def test_evaluate_and_the_server_give_the_same_accuracy(
    report: EvaluationReport, shipped_model_dir: Path, client: TestClient
) -> None:
    # the server answers each test sentence alone; evaluate scored them in batches
    manifest = Manifest.read(shipped_model_dir)
    test = rebuild_split(manifest.training, manifest.labels, root=REPO_ROOT).test
    served = [
        client.post("/v1/predict", json={"text": example.text}).json()["predictions"][0]
        for example in test
    ]

    correct = sum(
        prediction["label"] == example.label
        for prediction, example in zip(served, test, strict=True)
    )
    assert correct / len(test) == report.test.accuracy
    served_probabilities = np.array(
        [[p["probabilities"][label] for label in manifest.labels] for p in served], np.float32
    )
    labels = np.array(label_ids(test, manifest.labels))
    assert expected_calibration_error(served_probabilities, labels) == pytest.approx(
        report.test.calibration_error, abs=1e-5
    )


def test_the_behaviour_set_is_scored_by_category(report: EvaluationReport) -> None:
    cases = load_behaviour(BEHAVIOUR_SET)

    assert {category: score.examples for category, score in report.behaviour.items()} == dict(
        Counter(case.category for case in cases)
    )


def test_the_default_model_gets_more_of_the_behaviour_set_right_than_bilstm_additive(
    client: TestClient,
) -> None:
    cases = load_behaviour(BEHAVIOUR_SET)
    texts = [case.text for case in cases]

    def correct(route: str) -> int:
        predictions = client.post(route, json={"texts": texts}).json()["predictions"]
        return sum(
            prediction["label"] == case.label
            for case, prediction in zip(cases, predictions, strict=True)
        )

    assert correct("/v1/predict") > correct("/v1/models/bilstm-additive/predict")


def test_each_calibration_error_comes_with_what_a_calibrated_model_would_show(
    report: EvaluationReport, shipped_model_dir: Path
) -> None:
    for scores in (report.test, report.validation):
        spread = scores.calibrated_error
        assert 0.0 < spread.low < spread.median < spread.high < 0.2

    printed = CliRunner().invoke(app, ["evaluate", str(shipped_model_dir)]).output

    test = report.test.calibrated_error
    assert f"test {test.median:.4f} (90% within {test.low:.4f}-{test.high:.4f})" in printed
