"""The Hugging Face text-classification shape on `POST /predict`: over HTTP, and through the
`huggingface_hub` InferenceClient, which must reach this server and nothing else."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError
from pydantic import TypeAdapter

from attnserve.service.text_classification import LabelScore
from tests.conftest import same_answer

TEXTS = ["The battery life is great", "Crème brûlée 😀 was awful", "😀 🙃"]
ANSWER = TypeAdapter(list[list[LabelScore]])


def test_every_label_by_descending_score_with_the_tokens_on_the_top_one(
    client: TestClient,
) -> None:
    v1 = client.post("/v1/predict", json={"texts": TEXTS}).json()["predictions"]

    single = client.post("/predict", json={"inputs": TEXTS[0]})
    several = client.post("/predict", json={"inputs": TEXTS})

    assert single.status_code == several.status_code == 200
    assert same_answer(single.json(), several.json()[:1])
    ANSWER.validate_python(several.json())
    for labels, prediction in zip(several.json(), v1, strict=True):
        top, *rest = labels
        assert [entry["label"] for entry in labels] == sorted(
            prediction["probabilities"], key=lambda label: -prediction["probabilities"][label]
        )
        assert {entry["label"]: entry["score"] for entry in labels} == prediction["probabilities"]
        shared = ("label", "tokens", "truncated", "readable", "unreadable")
        assert {key: top[key] for key in shared} == {key: prediction[key] for key in shared}
        assert all(set(entry) == {"label", "score"} for entry in rest)
    # emoji alone: the model read nothing, and says so on this door too
    assert several.json()[2][0]["unreadable"] is True


def test_top_k_and_the_softmax_it_already_is(client: TestClient) -> None:
    full = client.post("/predict", json={"inputs": TEXTS}).json()

    top_1 = client.post("/predict", json={"inputs": TEXTS, "parameters": {"top_k": 1}})
    softmax = client.post(
        "/predict",
        json={"inputs": TEXTS, "parameters": {"top_k": 5, "function_to_apply": "softmax"}},
    )

    assert top_1.json() == [labels[:1] for labels in full]
    assert softmax.json() == full


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            {"inputs": "x", "parameters": {"function_to_apply": "sigmoid"}},
            422,
            "function_to_apply 'sigmoid' cannot be applied: the models output probabilities",
        ),
        ({"inputs": 5}, 422, "body.inputs: 'inputs' must be a text or a list of texts"),
        ({"inputs": []}, 422, "body.inputs.texts: List should have at least 1 item"),
        ({"inputs": "x", "parameters": {"top_k": 0}}, 422, "body.parameters.top_k: Input should"),
        ({"text": "x"}, 422, "body.inputs: Field required; body.text: Extra inputs"),
        ({"inputs": ["a"] * 65}, 413, "Too many texts: 65 in one request, the limit is 64."),
    ],
)
def test_errors_take_the_shapes_form_with_our_code(
    client: TestClient, body: dict[str, Any], status: int, error: str
) -> None:
    answer = client.post("/predict", json=body)

    assert answer.status_code == status
    assert set(answer.json()) == {"error", "error_type"}
    assert answer.json()["error"].startswith(error)


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every address this process connects a socket to while the test runs."""
    addresses: list[Any] = []
    connect = socket.socket.connect

    def recording_connect(self: socket.socket, address: Any) -> None:
        addresses.append(address)
        connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", recording_connect)
    yield addresses


def test_the_hugging_face_client_reads_labels_scores_and_tokens_from_this_server_alone(
    live_server: str,
    connections: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # no token or cache of the developer's
    monkeypatch.delenv("HF_TOKEN", raising=False)
    client = InferenceClient(model=f"{live_server}/predict")

    labels = client.text_classification(TEXTS[0])
    top = client.text_classification(TEXTS[1], top_k=1)
    with pytest.raises(HfHubHTTPError) as refused:
        client.text_classification("x", function_to_apply="sigmoid")

    assert [entry.label for entry in labels] == ["positive", "negative"]
    assert labels[0].score > labels[1].score and labels[0].score + labels[1].score == (
        pytest.approx(1.0, abs=1e-6)
    )
    # Our fields beside the top entry's label and score: kept by the client as attributes.
    tokens = labels[0].tokens  # type: ignore[attr-defined]
    assert [TEXTS[0][t["start"] : t["end"]] for t in tokens] == TEXTS[0].split()
    assert [entry.label for entry in top] == ["negative"]
    assert refused.value.response.status_code == 422
    assert "function_to_apply 'sigmoid' cannot be applied" in str(refused.value)
    port = int(live_server.rsplit(":", 1)[1])
    assert connections and {address for address in connections} == {("127.0.0.1", port)}
