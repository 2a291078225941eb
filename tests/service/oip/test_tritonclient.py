"""The standard Triton HTTP client against the real server, unchanged: health, metadata, and
inference with a BYTES input, in binary (its default) and in JSON, equal to the /v1 answer."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

TEXTS = ["The battery life is great", "Crème brûlée 😀 was awful, שלום", "ok"]
OUTPUTS = [
    "label",
    "probabilities",
    "attention",
    "token_start",
    "token_end",
    "truncated",
    "readable",
]


@pytest.fixture(scope="module")
def client(live_server: str) -> Iterator[triton.InferenceServerClient]:
    with triton.InferenceServerClient(live_server.removeprefix("http://")) as client:
        yield client


@pytest.fixture(scope="module")
def model(shipped_manifest: dict[str, Any]) -> str:
    name: str = shipped_manifest["name"]
    return name


@pytest.fixture(scope="module")
def v1_predictions(live_server: str) -> list[dict[str, Any]]:
    response = httpx.post(f"{live_server}/v1/predict", json={"texts": TEXTS})
    assert response.status_code == 200
    predictions: list[dict[str, Any]] = response.json()["predictions"]
    return predictions


def _text_input(binary_data: bool = True, texts: list[str] = TEXTS) -> triton.InferInput:
    text = triton.InferInput("text", [len(texts)], "BYTES")
    text.set_data_from_numpy(np.array(texts, dtype=np.object_), binary_data=binary_data)
    return text


def test_health_server_and_model_metadata(
    client: triton.InferenceServerClient, model: str, shipped_manifest: dict[str, Any]
) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(model)
    assert client.is_model_ready(model, shipped_manifest["version"])
    assert not client.is_model_ready("no-such-model")
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]

    metadata = client.get_model_metadata(model)

    assert metadata["name"] == model
    assert metadata["versions"] == [shipped_manifest["version"]]
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert [(o["name"], o["datatype"], o["shape"]) for o in metadata["outputs"]] == [
        ("label", "BYTES", [-1]),
        ("probabilities", "FP32", [-1, len(shipped_manifest["labels"])]),
        ("attention", "FP32", [-1, -1]),
        ("token_start", "INT64", [-1, -1]),
        ("token_end", "INT64", [-1, -1]),
        ("truncated", "BOOL", [-1]),
        ("readable", "FP32", [-1]),
    ]


def _assert_matches_v1(
    result: triton.InferResult, v1: list[dict[str, Any]], labels: list[str]
) -> None:
    length = max(len(prediction["tokens"]) for prediction in v1)
    # The client gives BYTES as bytes from binary data, as str from JSON data.
    labels_out = [x.decode() if isinstance(x, bytes) else x for x in result.as_numpy("label")]
    assert labels_out == [p["label"] for p in v1]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.dtype == np.float32 and probabilities.shape == (len(TEXTS), len(labels))
    for row, (text, prediction) in enumerate(zip(TEXTS, v1, strict=True)):
        assert probabilities[row].tolist() == [prediction["probabilities"][k] for k in labels]
        tokens = prediction["tokens"]
        n = len(tokens)
        attention = result.as_numpy("attention")[row]
        starts = result.as_numpy("token_start")[row]
        ends = result.as_numpy("token_end")[row]
        assert attention.shape == starts.shape == ends.shape == (length,)
        assert attention[:n].tolist() == [token["attention"] for token in tokens]
        assert math.isclose(float(attention.sum()), 1.0, abs_tol=1e-5)
        assert [text[s:e] for s, e in zip(starts[:n], ends[:n], strict=True)] == [
            token["text"] for token in tokens
        ]
        # Padding: zero attention, offsets -1.
        assert attention[n:].tolist() == [0.0] * (length - n)
        assert starts[n:].tolist() == ends[n:].tolist() == [-1] * (length - n)
    assert result.as_numpy("truncated").tolist() == [p["truncated"] for p in v1]
    assert result.as_numpy("readable").tolist() == pytest.approx([p["readable"] for p in v1])


def test_infer_with_the_clients_defaults_uses_binary_tensors_and_matches_v1(
    client: triton.InferenceServerClient,
    model: str,
    v1_predictions: list[dict[str, Any]],
    shipped_manifest: dict[str, Any],
) -> None:
    result = client.infer(model, [_text_input()], request_id="req-1")

    response = result.get_response()
    assert response["id"] == "req-1"
    assert response["model_name"] == model
    assert response["model_version"] == shipped_manifest["version"]
    assert [output["name"] for output in response["outputs"]] == OUTPUTS
    # Every output came in the binary part, none as JSON data.
    assert all("data" not in output for output in response["outputs"])
    assert all(output["parameters"]["binary_data_size"] > 0 for output in response["outputs"])
    _assert_matches_v1(result, v1_predictions, shipped_manifest["labels"])


def test_infer_in_json_mode_gives_the_same_tensors(
    client: triton.InferenceServerClient,
    model: str,
    v1_predictions: list[dict[str, Any]],
    shipped_manifest: dict[str, Any],
) -> None:
    outputs = [triton.InferRequestedOutput(name, binary_data=False) for name in OUTPUTS]

    result = client.infer(model, [_text_input(binary_data=False)], outputs=outputs)

    assert all("data" in output for output in result.get_response()["outputs"])
    _assert_matches_v1(result, v1_predictions, shipped_manifest["labels"])


def test_infer_returns_only_the_requested_outputs_each_in_the_encoding_asked(
    client: triton.InferenceServerClient, model: str, shipped_manifest: dict[str, Any]
) -> None:
    version = shipped_manifest["version"]
    outputs = [
        triton.InferRequestedOutput("token_end", binary_data=True),
        triton.InferRequestedOutput("label", binary_data=False),
    ]

    result = client.infer(
        model, [_text_input(texts=["great"])], outputs=outputs, model_version=version
    )

    response = result.get_response()
    assert [output["name"] for output in response["outputs"]] == ["token_end", "label"]
    assert response["outputs"][1]["data"] in (["positive"], ["negative"])
    assert result.as_numpy("token_end").tolist() == [[5]]
    assert result.as_numpy("probabilities") is None


def test_errors_reach_the_client_as_its_exception_with_the_servers_message(
    client: triton.InferenceServerClient, model: str
) -> None:
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("no-such-model", [_text_input()])
    assert unknown.value.status() == "404"
    assert str(unknown.value.message()).startswith("No model named 'no-such-model'. Known models:")

    numbers = triton.InferInput("text", [2], "INT64")
    numbers.set_data_from_numpy(np.array([1, 2], dtype=np.int64))
    with pytest.raises(InferenceServerException) as wrong_type:
        client.infer(model, [numbers])
    assert wrong_type.value.status() == "400"
    assert wrong_type.value.message() == (
        "Input 'text' must have datatype BYTES (UTF-8 texts), not INT64."
    )

    with pytest.raises(InferenceServerException) as compressed:
        client.infer(model, [_text_input()], request_compression_algorithm="gzip")
    assert compressed.value.message() == (
        "Content-Encoding 'gzip' is not supported: send the body uncompressed."
    )

    with pytest.raises(InferenceServerException) as empty:
        client.infer(model, [_text_input(texts=["fine", "   "])])
    assert empty.value.status() == "422"
    assert "index 1" in str(empty.value.message())
