"""The body-size limit: refused before parsing, by Content-Length or as the body streams in."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from attnserve.service.app import create_app
from tests.conftest import cpu_settings
from tests.live_server import serve

LIMIT = 256
TOO_LARGE = {
    "error": {
        "code": "body_too_large",
        "message": f"Request body is larger than the limit of {LIMIT} bytes.",
        "details": {"limit": LIMIT},
    }
}


def _body(size: int) -> bytes:
    """A valid JSON body of exactly `size` bytes."""
    return json.dumps({"text": "good " * size}).encode()[: size - 2] + b'"}'


def test_a_content_length_over_the_limit_is_413_before_the_body_is_read(
    shipped_repository: Path,
) -> None:
    with TestClient(create_app(cpu_settings(shipped_repository, max_body_bytes=LIMIT))) as client:
        response = client.post(
            "/v1/predict", content=_body(LIMIT + 1), headers={"content-type": "application/json"}
        )

    assert response.request.headers["content-length"] == str(LIMIT + 1)
    assert (response.status_code, response.json()) == (413, TOO_LARGE)


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.anyio
@pytest.mark.parametrize(("size", "status"), [(LIMIT, 200), (LIMIT + 1, 413)])
async def test_a_streamed_body_is_counted_as_it_arrives(
    shipped_repository: Path, size: int, status: int
) -> None:
    app = create_app(cpu_settings(shipped_repository, max_body_bytes=LIMIT))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client,
    ):
        response = await client.post(
            "/v1/predict",
            content=_chunks(_body(size), 50),
            headers={"content-type": "application/json"},
        )

    assert "content-length" not in response.request.headers
    assert response.status_code == status
    if status == 413:
        assert response.json() == TOO_LARGE


def test_heads_answers_past_the_in_flight_bound_are_refused_503_then_served_again(
    shipped_repository: Path,
) -> None:
    app = create_app(cpu_settings(shipped_repository, max_heads_in_flight=1))
    body = {"texts": [" ".join(["great battery"] * 40)] * 4, "detail": "heads"}
    with serve(app) as url, ThreadPoolExecutor(8) as pool:
        route = f"{url}/v1/models/transformer/predict"
        answers = list(pool.map(lambda _: httpx.post(route, json=body, timeout=60), range(8)))
        after = httpx.post(route, json=body, timeout=60)

    statuses = sorted(answer.status_code for answer in answers)
    refused = [answer for answer in answers if answer.status_code == 503]
    assert statuses[0] == 200 and refused, statuses
    for answer in refused:
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["error"]["code"] == "overloaded"
        assert answer.json()["error"]["details"] == {"limit": 1, "retry_after_s": 1}
    assert after.status_code == 200 and len(after.json()["predictions"][0]["heads"]) == 2
