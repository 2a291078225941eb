"""GET /metrics over HTTP: requests by route, model and status; stages, batches, texts, tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from attnserve.service.app import create_app
from attnserve.service.registry import find_models
from tests.conftest import REPO_ROOT, attnserve_serve, cpu_settings

SHIPPED_MODELS = len(find_models(REPO_ROOT / "model_repository"))

MODEL = "bilstm-additive"
SHIPPED_MODELS = len(find_models(REPO_ROOT / "model_repository"))


@pytest.fixture
def fresh_client(shipped_repository: Path) -> Iterator[TestClient]:
    """An app of its own, so its counters start at zero."""
    with TestClient(create_app(cpu_settings(shipped_repository, max_body_bytes=2000))) as client:
        yield client


def samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of GET /metrics: (name, labels) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_predictions_are_counted_by_route_model_status_texts_and_tokens(
    fresh_client: TestClient,
) -> None:
    one = fresh_client.post("/v1/predict", json={"text": "Great phone, awful case."}).json()
    three = fresh_client.post(
        f"/v1/models/{MODEL}/predict", json={"texts": ["Loved it", "Broke in a day", "ok"]}
    ).json()

    found = samples(fresh_client)
    tokens = sum(len(p["tokens"]) for body in (one, three) for p in body["predictions"])
    ok = {"model": MODEL, "status": "200"}
    assert value(found, "attnserve_requests_total", route="/v1/predict", **ok) == 1
    assert value(found, "attnserve_requests_total", route="/v1/models/{name}/predict", **ok) == 1
    assert value(found, "attnserve_request_duration_seconds_count", route="/v1/predict", **ok) == 1
    assert value(found, "attnserve_texts_total", model=MODEL) == 4
    assert value(found, "attnserve_tokens_total", model=MODEL) == tokens
    assert value(found, "attnserve_text_tokens_sum", model=MODEL) == tokens
    assert value(found, "attnserve_request_texts_count", model=MODEL) == 2
    assert value(found, "attnserve_request_texts_sum", model=MODEL) == 4
    # without a batcher each request is one batch of its own texts
    assert value(found, "attnserve_batch_size_count", model=MODEL) == 2
    assert value(found, "attnserve_batch_size_sum", model=MODEL) == 4
    assert value(found, "attnserve_batch_size_bucket", model=MODEL, le="2.0") == 1
    # waiting for the batcher's worker is the queue stage, apart from inference
    for stage in ("tokenize", "queue", "inference", "postprocess"):
        assert value(found, "attnserve_stage_duration_seconds_count", model=MODEL, stage=stage) == 2
        assert value(found, "attnserve_stage_duration_seconds_sum", model=MODEL, stage=stage) > 0


def test_models_loaded_are_exposed(fresh_client: TestClient) -> None:
    found = samples(fresh_client)

    assert value(found, "attnserve_models_loaded") == SHIPPED_MODELS
    info = {"model": MODEL, "version": "1", "architecture": MODEL}
    assert value(found, "attnserve_model_info", provider="CPUExecutionProvider", **info) == 1


def test_refusals_are_counted_with_their_status_and_bounded_labels(
    fresh_client: TestClient,
) -> None:
    fresh_client.post("/v1/predict", json={"text": "   "})
    fresh_client.post("/v1/models/no-such-model/predict", json={"text": "hello"})
    fresh_client.post("/v1/predict", content=b"x" * 3000)
    fresh_client.get("/no/such/route/42")

    found = samples(fresh_client)
    counted = {
        labels: count
        for (name, labels), count in found.items()
        if name == "attnserve_requests_total" and dict(labels)["route"] != "/metrics"
    }
    assert counted == {
        frozenset({("route", "/v1/predict"), ("model", ""), ("status", "422")}): 1,
        # refused before routing, with the route unknown
        frozenset({("route", "unmatched"), ("model", ""), ("status", "413")}): 1,
        # an unknown model's name is not a label value: anyone could make up millions
        frozenset({("route", "/v1/models/{name}/predict"), ("model", ""), ("status", "404")}): 1,
        frozenset({("route", "unmatched"), ("model", ""), ("status", "404")}): 1,
    }
    assert value(found, "attnserve_texts_total", model=MODEL) == 0


def test_a_served_model_named_in_the_path_labels_its_requests(fresh_client: TestClient) -> None:
    fresh_client.get(f"/v1/models/{MODEL}")

    found = samples(fresh_client)
    labels = {"route": "/v1/models/{name}", "model": MODEL, "status": "200"}
    assert value(found, "attnserve_requests_total", **labels) == 1


def test_open_inference_protocol_predictions_are_counted_too(fresh_client: TestClient) -> None:
    texts = ["great", "awful screen", "fine"]
    text_input = {"name": "text", "datatype": "BYTES", "shape": [3], "data": texts}
    response = fresh_client.post(f"/v2/models/{MODEL}/infer", json={"inputs": [text_input]})
    assert response.status_code == 200

    found = samples(fresh_client)
    labels = {"route": "/v2/models/{name}/infer", "model": MODEL, "status": "200"}
    assert value(found, "attnserve_requests_total", **labels) == 1
    assert value(found, "attnserve_texts_total", model=MODEL) == 3
    assert value(found, "attnserve_batch_size_sum", model=MODEL) == 3
    stage = {"model": MODEL, "stage": "inference"}
    assert value(found, "attnserve_stage_duration_seconds_count", **stage) == 1


def test_server_processes_sharing_a_multiprocess_directory_count_together(
    shipped_repository: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared)}
    with (
        attnserve_serve(shipped_repository, tmp_path / "one.log", **env) as one,
        attnserve_serve(shipped_repository, tmp_path / "two.log", **env) as two,
    ):
        for url in (one, one, two):
            assert httpx.post(f"{url}/v1/predict", json={"texts": ["good", "bad"]}).is_success
        scraped = [httpx.get(f"{url}/metrics").text for url in (one, two)]

    for text in scraped:
        found = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        ok = {"route": "/v1/predict", "model": MODEL, "status": "200"}
        assert value(found, "attnserve_requests_total", **ok) == 3
        assert value(found, "attnserve_texts_total", model=MODEL) == 6
        assert value(found, "attnserve_models_loaded") == SHIPPED_MODELS
