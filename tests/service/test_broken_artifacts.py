"""A broken model is reported unavailable with its reason; the healthy ones keep serving."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from attnserve.service.app import create_app
from tests.conftest import cpu_settings


def _place(shipped_model_dir: Path, repository: Path, name: str) -> Path:
    target = repository / name / "1"
    shutil.copytree(shipped_model_dir, target)
    _edit_manifest(target, name=name, version="1")
    return target


def _edit_manifest(model_dir: Path, **changes: object) -> None:
    path = model_dir / "manifest.json"
    path.write_text(json.dumps(json.loads(path.read_text("utf-8")) | changes), "utf-8")


def _truncate_onnx_keeping_its_hash(model_dir: Path) -> None:
    onnx = model_dir / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[: onnx.stat().st_size // 3])
    files = json.loads((model_dir / "manifest.json").read_text("utf-8"))["files"]
    _edit_manifest(
        model_dir, files=files | {"model.onnx": hashlib.sha256(onnx.read_bytes()).hexdigest()}
    )


def _append_a_byte(model_dir: Path) -> None:
    with (model_dir / "model.onnx").open("ab") as handle:
        handle.write(b"\0")


def _rename_outputs(model_dir: Path) -> None:
    outputs = json.loads((model_dir / "manifest.json").read_text("utf-8"))["outputs"]
    _edit_manifest(model_dir, outputs=[spec | {"name": spec["name"] + "_v2"} for spec in outputs])


BREAKAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated-onnx": (_truncate_onnx_keeping_its_hash, r"^ONNX Runtime cannot open model\.onnx: "),
    "hash-mismatch": (_append_a_byte, r"^model\.onnx has sha256 [0-9a-f]{64}, the manifest says "),
    "missing-tokenizer": (
        lambda d: (d / "tokenizer.json").unlink(),
        r"^tokenizer\.json is missing$",
    ),
    "manifest-not-graph": (_rename_outputs, r"^graph outputs are probabilities:float32, "),
}


class _Events(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def events() -> Iterator[list[logging.LogRecord]]:
    handler = _Events()
    logger = logging.getLogger("attnserve.service.registry")
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_broken_model_is_unavailable_and_the_other_serves(
    shipped_model_dir: Path, tmp_path: Path, events: list[logging.LogRecord], breakage: str
) -> None:
    break_it, reason = BREAKAGES[breakage]
    _place(shipped_model_dir, tmp_path, "good")
    break_it(_place(shipped_model_dir, tmp_path, "broken"))

    with TestClient(create_app(cpu_settings(tmp_path, default_model="good"))) as client:
        listed = client.get("/v1/models").json()
        broken = client.post("/v1/models/broken/predict", json={"text": "great"})
        described = client.get("/v1/models/broken")
        good = client.post("/v1/predict", json={"text": "great"})
        ready = client.get("/readyz")

    [unavailable] = listed["unavailable"]
    assert [model["name"] for model in listed["models"]] == ["good"]
    assert (unavailable["name"], unavailable["version"]) == ("broken", "1")

    assert re.search(reason, unavailable["reason"]), unavailable["reason"]
    assert str(tmp_path) not in json.dumps(listed)  # no server paths in what clients see
    for response in (broken, described):
        assert response.status_code == 503
        assert response.json()["error"] == {
            "code": "model_unavailable",
            "message": "Model 'broken' is unavailable: "
            "its artifact failed verification at startup.",
            "details": {"model": "broken", "reason": unavailable["reason"]},
        }
    assert good.status_code == 200
    assert (ready.status_code, ready.json()["error"]["details"]) == (
        503,
        {"unavailable": ["broken"]},
    )
    [logged] = [record for record in events if record.getMessage() == "model_unavailable"]
    assert vars(logged)["model"] == "broken"
    assert vars(logged)["reason"].startswith(f"{tmp_path / 'broken' / '1'}: ")  # the log has paths


def test_readiness_policy_any_is_ready_with_one_usable_model(
    shipped_model_dir: Path, tmp_path: Path
) -> None:
    _place(shipped_model_dir, tmp_path, "good")
    (_place(shipped_model_dir, tmp_path, "broken") / "tokenizer.json").unlink()
    settings = cpu_settings(tmp_path, default_model="good", readiness="any")

    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")

    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


def test_a_broken_default_model_answers_503_on_the_default_route(
    shipped_model_dir: Path, tmp_path: Path
) -> None:
    _place(shipped_model_dir, tmp_path, "good")
    (_place(shipped_model_dir, tmp_path, "broken") / "tokenizer.json").unlink()

    with TestClient(create_app(cpu_settings(tmp_path, default_model="broken"))) as client:
        response = client.post("/v1/predict", json={"text": "great"})

    assert (response.status_code, response.json()["error"]["code"]) == (503, "model_unavailable")
