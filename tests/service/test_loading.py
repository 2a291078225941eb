"""Loading a model directory: the shipped one verifies; each kind of breakage is named."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from attnserve.service.errors import ArtifactError
from attnserve.service.loading import load_artifact
from attnserve.service.providers import CPU, SessionConfig

CPU_ONLY = SessionConfig(providers=(CPU,), exact=True)


def _edit_manifest(model_dir: Path, **changes: Any) -> None:
    path = model_dir / "manifest.json"
    path.write_text(json.dumps(json.loads(path.read_text("utf-8")) | changes), "utf-8")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_shipped_model_loads_on_cpu(shipped_model_dir: Path) -> None:
    model = load_artifact(shipped_model_dir, CPU_ONLY)

    assert model.provider == CPU
    assert model.encoder.max_tokens == model.manifest.max_tokens
    assert [node.name for node in model.session.get_outputs()] == ["probabilities", "attention"]


def test_a_file_whose_hash_differs_is_named_with_both_hashes(model_copy: Path) -> None:
    expected = _sha256(model_copy / "model.onnx")
    with (model_copy / "model.onnx").open("ab") as handle:
        handle.write(b"\0")

    with pytest.raises(ArtifactError) as raised:
        load_artifact(model_copy, CPU_ONLY)

    assert str(raised.value) == (
        f"{model_copy}: model.onnx has sha256 {_sha256(model_copy / 'model.onnx')}, "
        f"the manifest says {expected}"
    )


def test_a_corrupt_model_that_matches_its_hash_fails_to_open(model_copy: Path) -> None:
    onnx = model_copy / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[: onnx.stat().st_size // 2])
    manifest = json.loads((model_copy / "manifest.json").read_text("utf-8"))
    _edit_manifest(model_copy, files=manifest["files"] | {"model.onnx": _sha256(onnx)})

    with pytest.raises(ArtifactError, match=r": ONNX Runtime cannot open model\.onnx: "):
        load_artifact(model_copy, CPU_ONLY)


def test_a_missing_tokenizer_is_named(model_copy: Path) -> None:
    (model_copy / "tokenizer.json").unlink()

    with pytest.raises(ArtifactError) as raised:
        load_artifact(model_copy, CPU_ONLY)

    assert str(raised.value) == f"{model_copy}: tokenizer.json is missing"


def test_renamed_manifest_outputs_are_reported_against_the_graph(model_copy: Path) -> None:
    manifest = json.loads((model_copy / "manifest.json").read_text("utf-8"))
    outputs = [spec | {"name": spec["name"] + "_v2"} for spec in manifest["outputs"]]
    _edit_manifest(model_copy, outputs=outputs)

    with pytest.raises(ArtifactError) as raised:
        load_artifact(model_copy, CPU_ONLY)

    assert str(raised.value) == (
        f"{model_copy}: graph outputs are probabilities:float32, attention:float32, manifest "
        "says probabilities_v2:float32, attention_v2:float32; manifest outputs are named "
        "['probabilities_v2', 'attention_v2'], the service needs ['probabilities', 'attention']"
    )


def test_a_manifest_that_is_not_a_manifest_is_named(model_copy: Path) -> None:
    _edit_manifest(model_copy, labels="positive")

    with pytest.raises(ArtifactError) as raised:
        load_artifact(model_copy, CPU_ONLY)

    assert str(raised.value) == (
        f"{model_copy}: manifest.json is invalid: labels: Input should be a valid array"
    )


def test_labels_that_disagree_with_the_graph_fail_on_the_first_batch(model_copy: Path) -> None:
    _edit_manifest(model_copy, labels=["negative", "neutral", "positive"])

    with pytest.raises(ArtifactError, match=r"probabilities has shape \(1, 2\) .*\(1, 3\)"):
        load_artifact(model_copy, CPU_ONLY)
