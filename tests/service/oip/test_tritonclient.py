"""The standard Triton HTTP client against the real server, unchanged: health, metadata, and
inference with a BYTES input, in binary (its default) and in JSON, equal to the /v1 answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.service.oip.tensor_answers import assert_tensors_match_v1, output_metadata

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
    assert [(o["name"], o["datatype"], o["shape"]) for o in metadata["outputs"]] == (
        output_metadata(len(shipped_manifest["labels"]))
    )


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
    assert_tensors_match_v1(result, TEXTS, v1_predictions, shipped_manifest["labels"])


def test_infer_in_json_mode_gives_the_same_tensors(
    client: triton.InferenceServerClient,
    model: str,
    v1_predictions: list[dict[str, Any]],
    shipped_manifest: dict[str, Any],
) -> None:
    outputs = [triton.InferRequestedOutput(name, binary_data=False) for name in OUTPUTS]

    result = client.infer(model, [_text_input(binary_data=False)], outputs=outputs)

    assert all("data" in output for output in result.get_response()["outputs"])
    assert_tensors_match_v1(result, TEXTS, v1_predictions, shipped_manifest["labels"])


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
