"""The /v2 routes over HTTP: the protocol's exact JSON, its binary framing byte for byte,
and `{"error": "<message>"}` on every non-200 answer (while /v1 keeps its own shape)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from attnserve.service.app import create_app
from attnserve.service.registry import find_models
from tests.conftest import REPO_ROOT, cpu_settings

# The model the shared `client` fixture serves first, as the conftest picks it.
_SHIPPED = find_models(REPO_ROOT / "model_repository")
MODEL = sorted(_SHIPPED)[0]
VERSION = _SHIPPED[MODEL].name
KNOWN = ", ".join(sorted(_SHIPPED))
INFER = f"/v2/models/{MODEL}/infer"


def _text_input(texts: list[Any], shape: list[int] | None = None) -> dict[str, Any]:
    return {"name": "text", "datatype": "BYTES", "shape": shape or [len(texts)], "data": texts}


def _bytes_tensor(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(element)) + element for element in elements)


def test_json_inference_answers_the_protocols_response_object(client: TestClient) -> None:
    body = {
        "id": "42",
        "inputs": [_text_input(["great", "awful screen"])],
        "outputs": [{"name": "label"}, {"name": "token_start"}, {"name": "token_end"}],
    }

    response = client.post(INFER, json=body)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "inference-header-content-length" not in response.headers
    assert response.json() == {
        "model_name": MODEL,
        "model_version": VERSION,
        "id": "42",
        "outputs": [
            {"name": "label", "shape": [2], "datatype": "BYTES", "data": ["positive", "negative"]},
            {"name": "token_start", "shape": [2, 2], "datatype": "INT64", "data": [0, -1, 0, 6]},
            {"name": "token_end", "shape": [2, 2], "datatype": "INT64", "data": [5, -1, 5, 12]},
        ],
    }


def test_texts_may_come_as_shape_b_by_1_and_nested_data(client: TestClient) -> None:
    flat = client.post(INFER, json={"inputs": [_text_input(["great", "awful"])]}).json()
    nested = client.post(INFER, json={"inputs": [_text_input([["great"], ["awful"]], [2, 1])]})

    assert nested.status_code == 200
    assert nested.json()["outputs"] == flat["outputs"]


def test_binary_request_and_response_framing_byte_for_byte(client: TestClient) -> None:
    text = "שלום 😀 great"
    tensor = _bytes_tensor(text.encode())
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "text",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": len(tensor)},
                }
            ],
            "outputs": [
                {"name": "label", "parameters": {"binary_data": True}},
                {"name": "token_end"},
                {"name": "truncated", "parameters": {"binary_data": True}},
            ],
        }
    ).encode()

    response = client.post(
        INFER,
        content=header + tensor,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    size = int(response.headers["inference-header-content-length"])
    answer = json.loads(response.content[:size])
    label_out, end_out, truncated_out = answer["outputs"]
    label = json.loads(client.post("/v1/predict", json={"text": text}).text)["predictions"][0]
    assert label_out == {
        "name": "label",
        "shape": [1],
        "datatype": "BYTES",
        "parameters": {"binary_data_size": 4 + len(label["label"])},
    }
    # Offsets count characters of the original text, not UTF-8 bytes.
    assert end_out == {
        "name": "token_end",
        "shape": [1, 3],
        "datatype": "INT64",
        "data": [4, 6, 12],
    }
    assert truncated_out["parameters"] == {"binary_data_size": 1}
    assert response.content[size:] == _bytes_tensor(label["label"].encode()) + b"\x00"


def _oip_error(response: Any) -> str:
    """The message of an error answer, which must be exactly {"error": <string>}."""
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str), body
    message: str = body["error"]
    return message


def _binary_body(tensor: bytes, declared_size: int) -> tuple[bytes, dict[str, str]]:
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "text",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": declared_size},
                }
            ]
        }
    ).encode()
    return header + tensor, {"Inference-Header-Content-Length": str(len(header))}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("GET", "/v2/nowhere", None, 404, "No route for GET /v2/nowhere."),
        ("GET", INFER, None, 405, f"Method GET is not allowed on {INFER}."),
        ("GET", "/v2/models/nope", None, 404, f"No model named 'nope'. Known models: {KNOWN}."),
        (
            "GET",
            "/v2/models/nope/ready",
            None,
            404,
            f"No model named 'nope'. Known models: {KNOWN}.",
        ),
        (
            "GET",
            f"/v2/models/{MODEL}/versions/7",
            None,
            404,
            f"Model '{MODEL}' has no version '7'. Served versions: {VERSION}.",
        ),
        (
            "POST",
            f"/v2/models/{MODEL}/versions/7/infer",
            {"inputs": [_text_input(["fine"])]},
            404,
            f"Model '{MODEL}' has no version '7'. Served versions: {VERSION}.",
        ),
        (
            "POST",
            INFER,
            b"{not json",
            400,
            "Invalid inference request: invalid JSON: key must be a string at line 1 column 2",
        ),
        ("POST", INFER, {"input": []}, 400, "Invalid inference request: inputs: Field required"),
        (
            "POST",
            INFER,
            {"inputs": [{**_text_input(["fine"]), "name": "sentence"}]},
            400,
            "Expected one input named 'text', datatype BYTES, shape [-1]; "
            "the request has inputs: 'sentence'.",
        ),
        (
            "POST",
            INFER,
            {"inputs": [_text_input(["a", "b", "c"], [2])]},
            400,
            "Input 'text' has shape [2], so 2 elements, but its data holds 3.",
        ),
        (
            "POST",
            INFER,
            {"inputs": [_text_input(["a", 1])]},
            400,
            "Input 'text': every element of 'data' must be a string.",
        ),
        (
            "POST",
            INFER,
            {"inputs": [_text_input([], [0])]},
            400,
            "Input 'text' holds no texts: there is nothing to classify.",
        ),
        (
            "POST",
            INFER,
            {"inputs": [_text_input(["fine"])], "outputs": [{"name": "logits"}]},
            400,
            f"Model '{MODEL}' has no output 'logits'; its outputs are label, probabilities, "
            "attention, token_start, token_end, truncated, readable.",
        ),
        (
            "POST",
            INFER,
            {
                "inputs": [_text_input(["fine"])],
                "outputs": [{"name": "label", "parameters": {"classification": 2}}],
            },
            400,
            "Parameter 'classification' of output 'label' is not supported by attnserve "
            "(its extensions: binary_tensor_data).",
        ),
        (
            "POST",
            INFER,
            {"inputs": [_text_input(["fine", " "])]},
            422,
            "Text at index 1 is empty or has no tokens: there is nothing to classify.",
        ),
        (
            "POST",
            INFER,
            {"inputs": [_text_input(["x"] * 65)]},
            413,
            "Too many texts: 65 in one request, the limit is 64.",
        ),
        (
            "POST",
            INFER,
            {"inputs": [_text_input(["x" * 5001])]},
            413,
            "Text at index 0 has 5001 characters, the limit is 5000.",
        ),
        (
            "POST",
            INFER,
            b"x" * (1024 * 1024 + 1),
            413,
            "Request body is larger than the limit of 1048576 bytes.",
        ),
    ],
)
def test_every_error_of_a_v2_route_is_the_protocols_error_object(
    client: TestClient, method: str, path: str, body: Any, status: int, message: str
) -> None:
    if isinstance(body, bytes):
        response = client.request(method, path, content=body)
    else:
        response = client.request(method, path, json=body)

    assert response.status_code == status
    assert _oip_error(response) == message


@pytest.mark.parametrize(
    ("content", "headers", "message"),
    [
        (
            *_binary_body(_bytes_tensor(b"fine"), 99),
            "The binary part of the body has 8 bytes, but the inputs' binary_data_size add up "
            "to 99 ('text' 99).",
        ),
        (
            *_binary_body(b"\x09\x00\x00\x00fine", 8),
            "Input 'text': a BYTES element of 9 bytes runs past the end of its binary data "
            "(4 bytes left).",
        ),
        (
            *_binary_body(_bytes_tensor(b"\xff\xfe"), 6),
            "Input 'text': element 0 is not valid UTF-8 (invalid start byte at byte 0).",
        ),
        (
            b"{}",
            {"Inference-Header-Content-Length": "500"},
            "Inference-Header-Content-Length must be the size in bytes of the JSON object at "
            "the start of the body (2 bytes); it is '500'.",
        ),
    ],
)
def test_malformed_binary_tensors_are_400_with_the_reason(
    client: TestClient, content: bytes, headers: dict[str, str], message: str
) -> None:
    response = client.post(INFER, content=content, headers=headers)

    assert response.status_code == 400
    assert _oip_error(response) == message


def test_before_the_models_load_v2_is_live_but_not_ready(shipped_repository: Path) -> None:
    # Without entering the client, the lifespan (which loads the models) does not run.
    client = TestClient(create_app(cpu_settings(shipped_repository)))
    not_ready = "Models are not loaded; try again shortly."

    assert client.get("/v2/health/live").json() == {"live": True}
    for path in ("/v2/health/ready", f"/v2/models/{MODEL}/ready", f"/v2/models/{MODEL}"):
        response = client.get(path)
        assert (response.status_code, _oip_error(response)) == (503, not_ready)


def test_health_and_readiness_bodies(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get(f"/v2/models/{MODEL}/versions/{VERSION}/ready").json() == {
        "name": MODEL,
        "ready": True,
    }


def test_v1_errors_keep_their_own_shape(client: TestClient) -> None:
    for path in ("/v1/models/nope", "/v2x"):
        body = client.get(path).json()
        assert set(body["error"]) == {"code", "message", "details"}


def test_openapi_documents_the_v2_routes_and_both_inference_bodies(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    infer = paths["/v2/models/{name}/infer"]["post"]
    assert set(infer["requestBody"]["content"]) == {"application/json", "application/octet-stream"}
    assert set(infer["responses"]) == {"200", "400", "404", "413", "422", "503"}
    assert {"/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/{name}/ready"} <= set(paths)
