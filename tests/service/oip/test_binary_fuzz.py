"""Property-based fuzzing of the binary tensor data extension: any header value and any body
is a 2xx or a 4xx with the protocol's error body, never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnserve.service.app import create_app
from tests.conftest import cpu_settings

PATH = "/v2/models/bilstm-additive/infer"
# what a header value may carry over HTTP/1.1: no line breaks, no NUL
HEADER_BYTES = st.binary(max_size=40).filter(lambda v: not {0, 10, 13} & set(v))
SIZES = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(lambda n: str(n).encode()),
    # what a server reads as latin-1: superscripts and fractions are digits to str.isdigit
    st.text(st.sampled_from("0123456789\xb2\xb3\xb9\xbc\xbd\xbe \t+-_"), min_size=1).map(
        lambda s: s.encode("latin-1")
    ),
    # longer than int() converts (4300 digits)
    st.integers(min_value=4300, max_value=6000).map(lambda n: b"1" * n),
    HEADER_BYTES,
)


def _request(texts: list[str]) -> bytes:
    raw = b"".join(len(t.encode()).to_bytes(4, "little") + t.encode() for t in texts)
    text_input = {
        "name": "text",
        "shape": [len(texts)],
        "datatype": "BYTES",
        "parameters": {"binary_data_size": len(raw)},
    }
    return json.dumps({"inputs": [text_input]}).encode() + raw


BODIES = st.one_of(
    st.binary(max_size=400),
    st.lists(st.text(max_size=30), min_size=1, max_size=4).map(_request),
    # a valid request cut or extended at random
    st.tuples(st.lists(st.text(max_size=20), min_size=1, max_size=3), st.integers(-30, 30)).map(
        lambda pair: (
            _request(pair[0])[: len(_request(pair[0])) + pair[1]]
            if pair[1] < 0
            else _request(pair[0]) + b"\x00" * pair[1]
        )
    ),
)


@pytest.fixture(scope="module")
def client(shipped_repository: Path) -> Iterator[TestClient]:
    with TestClient(create_app(cpu_settings(shipped_repository))) as test_client:
        yield test_client


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(size=SIZES, body=BODIES)
def test_no_header_value_or_body_makes_the_binary_extension_fail(
    client: TestClient, size: bytes, body: bytes
) -> None:
    response = client.post(
        PATH,
        content=body,
        headers={
            b"Inference-Header-Content-Length": size,
            b"content-type": b"application/octet-stream",
        },
    )

    assert response.status_code < 500, (size, body, response.text)
    if response.status_code != 200:
        assert set(response.json()) == {"error"}
