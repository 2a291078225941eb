"""GET /metrics over HTTP: requests by route, model and status; stages, batches, texts, tokens."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from attnserve.service.app import create_app
from attnserve.service.registry import find_models
from tests.conftest import DEFAULT_MODEL, REPO_ROOT, attnserve_serve, cpu_settings

SHIPPED_MODELS = len(find_models(REPO_ROOT / "model_repository"))

MODEL = DEFAULT_MODEL
SHIPPED_MODELS = len(find_models(REPO_ROOT / "model_repository"))


@pytest.fixture
def fresh_client(shipped_repository: Path) -> Iterator[TestClient]:
    """An app of its own, so its counters start at zero."""
    # batches of up to 8 texts, whatever the default's serving hint, so that each request here
    # is one batch
    settings = cpu_settings(shipped_repository, max_body_bytes=2000, batch_max_sizes={MODEL: 8})
    with TestClient(create_app(settings)) as client:
        yield client


def samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of GET /metrics: (name, labels) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parsed(response.text)


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


def test_the_process_its_garbage_collector_and_python_are_exposed(
    fresh_client: TestClient,
) -> None:
    found = samples(fresh_client)

    assert value(found, "process_resident_memory_bytes") > 10e6  # the models alone weigh more
    assert value(found, "process_cpu_seconds_total") > 0
    assert value(found, "process_open_fds") > 0
    assert abs(value(found, "process_start_time_seconds") - this_process_start()) < 5
    for generation in ("0", "1", "2"):
        assert ("python_gc_collections_total", frozenset({("generation", generation)})) in found
    info = [labels for name, labels in found if name == "python_info"]
    assert [dict(labels)["version"] for labels in info] == [platform.python_version()]


def this_process_start() -> float:
    """This process's start, in seconds since the epoch, from /proc (as the collector reads)."""
    ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    boot = next(
        float(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime ")
    )
    return boot + ticks / os.sysconf("SC_CLK_TCK")


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
    with attnserve_serve(shipped_repository, tmp_path / "one.log", **env) as one:
        with attnserve_serve(shipped_repository, tmp_path / "two.log", **env) as two:
            for url in (one, one, two):
                assert httpx.post(f"{url}/v1/predict", json={"texts": ["good", "bad"]}).is_success
            scraped = [parsed(httpx.get(f"{url}/metrics").text) for url in (one, two)]
        after_two_stopped = parsed(httpx.get(f"{one}/metrics").text)

    for found in scraped:
        ok = {"route": "/v1/predict", "model": MODEL, "status": "200"}
        assert value(found, "attnserve_requests_total", **ok) == 3
        assert value(found, "attnserve_texts_total", model=MODEL) == 6
        assert value(found, "attnserve_models_loaded") == SHIPPED_MODELS
        # each process's own figures, one series a live process; counters add up over them
        assert len(pids(found, "process_resident_memory_bytes")) == 2
        assert pids(found, "process_start_time_seconds") == pids(found, "process_open_fds")
        assert value(found, "process_cpu_seconds_total") > 0
        assert value(found, "python_gc_collections_total", generation="0") > 0
        assert len([name for name, _ in found if name == "python_info"]) == 1
    assert pids(scraped[0], "process_resident_memory_bytes") == pids(
        scraped[1], "process_resident_memory_bytes"
    )
    # a process that stopped took its gauges along; its counters still count
    assert len(pids(after_two_stopped, "process_resident_memory_bytes")) == 1
    cpu = [value(found, "process_cpu_seconds_total") for found in (*scraped, after_two_stopped)]
    assert cpu[2] >= max(cpu[:2])


def parsed(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def pids(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str) -> set[str]:
    """The `pid` labels of a metric's series."""
    return {dict(labels)["pid"] for sample, labels in found if sample == name}
