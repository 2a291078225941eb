"""Triton's gRPC client against the real server, unchanged: health, metadata, and inference
with its defaults (raw input and output contents), equal to the /v1 and /v2 HTTP answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from tests.service.grpc.conftest import Servers
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
def client(servers: Servers) -> Iterator[triton.InferenceServerClient]:
    with triton.InferenceServerClient(servers.grpc) as client:
        yield client


@pytest.fixture(scope="module")
def model(shipped_manifest: dict[str, Any]) -> str:
    name: str = shipped_manifest["name"]
    return name


@pytest.fixture(scope="module")
def v1_predictions(servers: Servers) -> list[dict[str, Any]]:
    response = httpx.post(f"{servers.http}/v1/predict", json={"texts": TEXTS})
    assert response.status_code == 200
    predictions: list[dict[str, Any]] = response.json()["predictions"]
    return predictions


def _text_input(texts: list[str] = TEXTS) -> triton.InferInput:
    text = triton.InferInput("text", [len(texts)], "BYTES")
    text.set_data_from_numpy(np.array(texts, dtype=np.object_))
    return text


def test_health_and_metadata_match_the_http_protocol(
    client: triton.InferenceServerClient,
    servers: Servers,
    model: str,
    shipped_manifest: dict[str, Any],
) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(model)
    assert client.is_model_ready(model, shipped_manifest["version"])
    with pytest.raises(InferenceServerException) as unknown:
        client.is_model_ready("no-such-model")
    assert unknown.value.status() == "StatusCode.NOT_FOUND"

    server = client.get_server_metadata(as_json=True)
    metadata = client.get_model_metadata(model, as_json=True)

    assert server == httpx.get(f"{servers.http}/v2").json()
    # The gRPC client's JSON form gives int64 shapes as strings.
    for tensor in (*metadata["inputs"], *metadata["outputs"]):
        tensor["shape"] = [int(size) for size in tensor["shape"]]
    assert metadata == httpx.get(f"{servers.http}/v2/models/{model}").json()
    assert [(o["name"], o["datatype"], o["shape"]) for o in metadata["outputs"]] == (
        output_metadata(len(shipped_manifest["labels"]))
    )


def test_infer_with_the_clients_defaults_matches_v1_and_the_http_protocol(
    client: triton.InferenceServerClient,
    servers: Servers,
    model: str,
    v1_predictions: list[dict[str, Any]],
    shipped_manifest: dict[str, Any],
) -> None:
    result = client.infer(model, [_text_input()], request_id="req-1")

    response = result.get_response()
    assert (response.id, response.model_name) == ("req-1", model)
    assert response.model_version == shipped_manifest["version"]
    assert [output.name for output in response.outputs] == OUTPUTS
    # Every output in raw_output_contents, as Triton answers.
    assert len(response.raw_output_contents) == len(OUTPUTS)
    assert_tensors_match_v1(result, TEXTS, v1_predictions, shipped_manifest["labels"])

    over_http = httpx.post(
        f"{servers.http}/v2/models/{model}/infer",
        json={"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": TEXTS}]},
    ).json()
    for output in over_http["outputs"]:
        data = result.as_numpy(output["name"])
        decoded = [x.decode() for x in data] if output["datatype"] == "BYTES" else data
        assert list(data.shape) == output["shape"]
        assert np.asarray(decoded).ravel().tolist() == output["data"]


def test_requested_outputs_a_version_and_compression(
    client: triton.InferenceServerClient, model: str, shipped_manifest: dict[str, Any]
) -> None:
    outputs = [triton.InferRequestedOutput("token_end"), triton.InferRequestedOutput("label")]

    result = client.infer(
        model,
        [_text_input(["great"])],
        outputs=outputs,
        model_version=shipped_manifest["version"],
        compression_algorithm="gzip",
    )

    assert [output.name for output in result.get_response().outputs] == ["token_end", "label"]
    assert result.as_numpy("token_end").tolist() == [[5]]
    assert result.as_numpy("label").tolist() in ([b"positive"], [b"negative"])
    assert result.as_numpy("probabilities") is None


def test_errors_reach_the_client_as_grpc_statuses_with_the_servers_message(
    client: triton.InferenceServerClient, model: str
) -> None:
    def refused(*args: Any, **kwargs: Any) -> tuple[str, str]:
        with pytest.raises(InferenceServerException) as error:
            client.infer(*args, **kwargs)
        return str(error.value.status()), str(error.value.message())

    numbers = triton.InferInput("text", [2], "INT64")
    numbers.set_data_from_numpy(np.array([1, 2], dtype=np.int64))
    classify = [triton.InferRequestedOutput("label", class_count=1)]

    unknown = refused("no-such-model", [_text_input()])
    assert unknown[0] == "StatusCode.NOT_FOUND"
    assert unknown[1].startswith("No model named 'no-such-model'. Known models:")
    assert refused(model, [numbers]) == (
        "StatusCode.INVALID_ARGUMENT",
        "Input 'text' must have datatype BYTES (UTF-8 texts), not INT64.",
    )
    assert refused(model, [_text_input(["fine", "   "])]) == (
        "StatusCode.INVALID_ARGUMENT",
        "Text at index 1 is empty or has no tokens: there is nothing to classify.",
    )
    assert refused(model, [_text_input()], outputs=classify) == (
        "StatusCode.INVALID_ARGUMENT",
        "Parameter 'classification' of output 'label' is not supported by attnserve "
        "(its extensions: binary_tensor_data).",
    )
    assert refused(model, [_text_input(["a"] * 65)]) == (
        "StatusCode.RESOURCE_EXHAUSTED",
        "Too many texts: 65 in one request, the limit is 64.",
    )
