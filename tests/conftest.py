"""Fixtures shared across the test packages: the shipped model repository and its model."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from attnserve.artifact.manifest import MANIFEST_FILE
from attnserve.service.app import create_app
from attnserve.service.loading import LoadedModel, load_artifact
from attnserve.service.providers import CPU, SessionConfig
from attnserve.service.registry import DEFAULT_MODEL_FILE, find_models
from attnserve.service.settings import Settings
from tests.live_server import serve

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WORD_MODEL = "bilstm-additive"
# the model POST /v1/predict answers with
DEFAULT_MODEL = (REPO_ROOT / "model_repository" / DEFAULT_MODEL_FILE).read_text("utf-8").strip()
# Screenshots tests took, for a person to look at; their paths are printed at the end.
SCREENSHOTS: list[Path] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for path in SCREENSHOTS:
        terminalreporter.write_line(f"screenshot: {path}")


@pytest.fixture(scope="session", autouse=True)
def _no_attnserve_environment() -> Iterator[None]:
    """Tests see Settings' defaults, whatever ATTNSERVE_* the developer's shell exports."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("ATTNSERVE_")]:
            patch.delenv(name)
        yield


@pytest.fixture(scope="session")
def shipped_repository() -> Path:
    """The repository `make run` serves; tests that need a real trained model use it."""
    return REPO_ROOT / "model_repository"


@pytest.fixture(scope="session")
def shipped_model_dir(shipped_repository: Path) -> Path:
    """The default shipped model's served (highest) version directory."""
    default = (shipped_repository / DEFAULT_MODEL_FILE).read_text("utf-8").strip()
    return find_models(shipped_repository)[default]


@pytest.fixture(scope="session")
def shipped_manifest(shipped_model_dir: Path) -> dict[str, Any]:
    """The shipped manifest as plain JSON, read without the service's code."""
    manifest: dict[str, Any] = json.loads((shipped_model_dir / MANIFEST_FILE).read_text("utf-8"))
    return manifest


@pytest.fixture(scope="session")
def loaded_model(shipped_model_dir: Path) -> LoadedModel:
    """The default shipped model, verified and opened on CPU."""
    return load_artifact(shipped_model_dir, SessionConfig(providers=(CPU,), exact=True))


@pytest.fixture(scope="session")
def word_model(shipped_repository: Path) -> LoadedModel:
    """The tutorial's bilstm-additive, whose tokens are words (the default's are word pieces),
    verified and opened on CPU."""
    model_dir = find_models(shipped_repository)[WORD_MODEL]
    return load_artifact(model_dir, SessionConfig(providers=(CPU,), exact=True))


@pytest.fixture
def model_copy(shipped_model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the shipped model at `<tmp>/repository/<name>/<version>/`, to break."""
    target = tmp_path / "repository" / shipped_model_dir.parent.name / shipped_model_dir.name
    shutil.copytree(shipped_model_dir, target)
    return target


def cpu_settings(repository: Path, **overrides: Any) -> Settings:
    """Settings for a test app: the given repository, on CPU."""
    return Settings(model_repository=repository, providers="cpu", **overrides)


@pytest.fixture(scope="module")
def client(shipped_repository: Path) -> Iterator[TestClient]:
    """The real app over HTTP, its lifespan run, serving the shipped repository on CPU."""
    with TestClient(create_app(cpu_settings(shipped_repository))) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def live_server(shipped_repository: Path) -> Iterator[str]:
    """Base URL of the real app serving the shipped repository on CPU over a real socket."""
    with serve(create_app(cpu_settings(shipped_repository))) as url:
        yield url


@pytest.fixture(scope="session")
def two_text_server(shipped_repository: Path) -> Iterator[str]:
    """The shipped models over a real socket with a limit of two texts a request."""
    with serve(create_app(cpu_settings(shipped_repository, max_texts_per_request=2))) as url:
        yield url


@pytest.fixture(scope="session")
def server_process(
    shipped_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`attnserve serve` in a subprocess on a free port of 127.0.0.1, serving the shipped models."""
    with attnserve_serve(shipped_repository, tmp_path_factory.mktemp("server") / "log") as url:
        yield url


@contextmanager
def attnserve_serve(repository: Path, log: Path, **env: str) -> Iterator[str]:
    """Runs `attnserve serve` (with extra environment `env`) until the block ends; its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    environment = {
        **os.environ,
        "ATTNSERVE_MODEL_REPOSITORY": str(repository),
        "ATTNSERVE_PORT": str(port),
        "ATTNSERVE_PROVIDERS": "cpu",
        **env,
    }
    attnserve = str(Path(sys.executable).parent / "attnserve")
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [attnserve, "serve"], env=environment, cwd=REPO_ROOT, stderr=stderr
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _answers(f"{url}/readyz"):
            assert process.poll() is None, f"attnserve serve exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"not ready within 30 s:\n{log.read_text()}"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A context of Debian's Chromium driven by Playwright (never a downloaded browser); one a
    module, since Playwright's event loop would stop asyncio tests that run while it lives."""
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI installs it (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = chromium.new_context(viewport={"width": 1000, "height": 700})
        context.set_default_timeout(10_000)
        yield context
        context.close()
        chromium.close()


# A text's answer may differ in the last bits of float32 with what it is batched with (the
# padding changes the order of the sums), within the service's promise (README: 1e-5).
BATCH_TOLERANCE = 1e-5


def same_answer(first: Any, second: Any) -> bool:
    """Equal answers (dicts, lists, models' dumps), floats within BATCH_TOLERANCE."""
    if hasattr(first, "model_dump") and hasattr(second, "model_dump"):
        return same_answer(first.model_dump(), second.model_dump())
    if isinstance(first, float) and isinstance(second, float):
        return abs(first - second) <= BATCH_TOLERANCE
    if isinstance(first, dict) and isinstance(second, dict):
        return first.keys() == second.keys() and all(
            same_answer(first[key], second[key]) for key in first
        )
    if isinstance(first, list | tuple) and isinstance(second, list | tuple):
        return len(first) == len(second) and all(map(same_answer, first, second))
    return bool(first == second)
