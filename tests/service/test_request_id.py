"""X-Request-ID: accepted or made up, echoed on every answer, and on every log event."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from attnserve.service.app import JsonLineFormatter, configure_logging, create_app
from tests.conftest import cpu_settings

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def small_body_client(shipped_repository: Path) -> Iterator[TestClient]:
    with TestClient(create_app(cpu_settings(shipped_repository, max_body_bytes=2000))) as client:
        yield client


@pytest.fixture
def service_log() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Reads the JSON lines the service's own log handler wrote during the test so far."""
    configure_logging("info")  # what create_app does; the handler is made once per process
    [handler] = [
        h
        for h in logging.getLogger("attnserve").handlers
        if isinstance(h, logging.StreamHandler) and isinstance(h.formatter, JsonLineFormatter)
    ]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        handler.setStream(previous)


def test_a_given_request_id_is_echoed(small_body_client: TestClient) -> None:
    response = small_body_client.post(
        "/v1/predict", json={"text": "Loved it"}, headers={"X-Request-ID": "order-42/retry:1"}
    )

    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "order-42/retry:1"


def test_without_one_each_request_gets_a_new_id(small_body_client: TestClient) -> None:
    first = small_body_client.get("/healthz").headers["X-Request-ID"]
    second = small_body_client.get("/healthz").headers["X-Request-ID"]

    assert GENERATED.fullmatch(first) and GENERATED.fullmatch(second)
    assert first != second


@pytest.mark.parametrize("unfit", ["has spaces", "x" * 129, 'quote"', "new\\nline"])
def test_an_unfit_request_id_is_replaced(small_body_client: TestClient, unfit: str) -> None:
    response = small_body_client.get("/healthz", headers={"X-Request-ID": unfit})

    assert GENERATED.fullmatch(response.headers["X-Request-ID"])


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/predict", b'{"text": ""}', 422),
        ("POST", "/v1/models/nope/predict", b'{"text": "hi"}', 404),
        ("POST", "/v1/predict", b"x" * 3000, 413),
        ("GET", "/nowhere", b"", 404),
    ],
)
def test_error_answers_carry_the_id_too(
    small_body_client: TestClient, method: str, path: str, body: bytes, status: int
) -> None:
    response = small_body_client.request(
        method,
        path,
        content=body,
        headers={"X-Request-ID": "req-7", "Content-Type": "application/json"},
    )

    assert response.status_code == status
    assert response.headers["X-Request-ID"] == "req-7"
    assert "error" in response.json()


def test_every_log_event_of_a_request_carries_its_id_and_none_its_text(
    small_body_client: TestClient, service_log: Callable[[], list[dict[str, Any]]]
) -> None:
    secret = "my very private sentence"
    client = small_body_client
    client.post("/v1/predict", json={"text": secret}, headers={"X-Request-ID": "a-1"})
    client.post("/v1/models/nope/predict", json={"text": secret}, headers={"X-Request-ID": "b-2"})
    generated = client.post("/v1/predict", json={"text": secret}).headers["X-Request-ID"]

    events = [(line["event"], line.get("request_id"), line.get("status")) for line in service_log()]
    assert events == [
        ("request_finished", "a-1", 200),
        ("request_rejected", "b-2", 404),
        ("request_finished", "b-2", 404),
        ("request_finished", generated, 200),
    ]
    finished = [line for line in service_log() if line["event"] == "request_finished"]
    assert [line["route"] for line in finished] == [
        "/v1/predict",
        "/v1/models/{name}/predict",
        "/v1/predict",
    ]
    assert all(line["method"] == "POST" and line["duration_ms"] > 0 for line in finished)
    assert all(secret not in json.dumps(line) for line in service_log())


def test_an_unexpected_error_is_logged_with_the_requests_id(
    shipped_repository: Path, service_log: Callable[[], list[dict[str, Any]]]
) -> None:
    app = create_app(cpu_settings(shipped_repository))

    async def explode() -> None:
        raise RuntimeError("our bug")

    app.add_api_route("/explode", explode)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/explode", headers={"X-Request-ID": "boom-1"})

    assert response.status_code == 500
    assert response.headers["x-request-id"] == "boom-1"
    assert response.headers["x-content-type-options"] == "nosniff"
    events = {line["event"]: line for line in service_log() if line.get("request_id")}
    assert events["request_finished"]["status"] == 500
    assert events["internal_error"]["request_id"] == "boom-1"
    assert "our bug" in events["internal_error"]["exception"]
