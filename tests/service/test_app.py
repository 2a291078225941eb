"""The app factory: startup loads and verifies the models, or fails; importing runs nothing."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient

from attnserve.service.app import create_app
from attnserve.service.errors import ProviderUnavailable, RepositoryError
from attnserve.service.providers import CUDA
from tests.conftest import REPO_ROOT, cpu_settings


def test_importing_the_service_does_not_import_torch_or_transformers() -> None:
    code = (
        "import sys, attnserve.service.app, attnserve.cli.main, attnserve.cli.evaluation; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'sentence_transformers')]; "
        "assert not heavy, sorted(heavy)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr


def test_before_the_models_are_loaded_the_app_is_alive_but_not_ready(
    shipped_repository: Path,
) -> None:
    # Without entering the client, the lifespan (which loads the models) does not run.
    client = TestClient(create_app(cpu_settings(shipped_repository)))
    not_ready = {
        "error": {
            "code": "model_not_ready",
            "message": "Models are not loaded; try again shortly.",
            "details": None,
        }
    }

    assert client.get("/healthz").json() == {"status": "ok"}
    for response in (client.get("/readyz"), client.post("/v1/predict", json={"text": "ok"})):
        assert (response.status_code, response.json()) == (503, not_ready)


def test_what_startup_loaded_is_kept_out_of_garbage_collection_while_serving(
    shipped_repository: Path,
) -> None:
    with TestClient(create_app(cpu_settings(shipped_repository))) as client:
        assert client.get("/readyz").status_code == 200
        frozen_while_serving = gc.get_freeze_count()
    frozen_after_shutdown = gc.get_freeze_count()

    assert frozen_while_serving > 10_000
    assert frozen_after_shutdown == 0


def test_a_repository_whose_only_model_is_broken_stops_startup_with_its_reason(
    model_copy: Path,
) -> None:
    (model_copy / "tokenizer.json").unlink()
    app = create_app(cpu_settings(model_copy.parent.parent))

    with pytest.raises(RepositoryError) as raised, TestClient(app):
        pass

    assert str(raised.value) == (
        f"No usable model in {model_copy.parent.parent}: "
        f"{model_copy.parent.name}: tokenizer.json is missing"
    )


@pytest.mark.skipif(CUDA in ort.get_available_providers(), reason="this ONNX Runtime has CUDA")
def test_an_unavailable_provider_stops_startup(shipped_repository: Path) -> None:
    settings = cpu_settings(shipped_repository).model_copy(update={"providers": "cuda"})

    app = create_app(settings)

    with (
        pytest.raises(ProviderUnavailable, match="ATTNSERVE_PROVIDERS=cuda needs"),
        TestClient(app),
    ):
        pass


def test_an_unexpected_error_is_a_500_without_its_details(shipped_repository: Path) -> None:
    app = create_app(cpu_settings(shipped_repository))

    async def explode() -> None:
        raise RuntimeError("secret detail from /srv/attnserve/service/x.py")

    app.add_api_route("/explode", explode)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/explode")

    assert (response.status_code, response.json()) == (
        500,
        {"error": {"code": "internal_error", "message": "Internal server error.", "details": None}},
    )


def test_each_app_keeps_its_own_settings(shipped_repository: Path) -> None:
    small = create_app(cpu_settings(shipped_repository, max_texts_per_request=2))
    default = create_app(cpu_settings(shipped_repository))

    with TestClient(small) as small_client, TestClient(default) as default_client:
        texts = {"texts": ["a", "b", "c"]}
        assert small_client.post("/v1/predict", json=texts).status_code == 413
        assert default_client.post("/v1/predict", json=texts).status_code == 200
