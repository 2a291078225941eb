"""KServe's V1 protocol on the real app over HTTP: `POST /v1/models/{name}:predict`."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from attnserve.service.kserve_v1 import PredictionsResponse

MODEL = "bilstm-additive"
TEXTS = ["The battery life is great", "Crème brûlée 😀 was awful"]


def test_instances_as_texts_or_objects_answer_v1s_predictions(client: TestClient) -> None:
    v1 = client.post(f"/v1/models/{MODEL}/predict", json={"texts": TEXTS}).json()

    answer = client.post(
        f"/v1/models/{MODEL}:predict", json={"instances": [TEXTS[0], {"text": TEXTS[1]}]}
    )

    assert answer.status_code == 200
    assert answer.json() == {"predictions": v1["predictions"]}
    PredictionsResponse.model_validate(answer.json())
    for text, prediction in zip(TEXTS, answer.json()["predictions"], strict=True):
        assert [text[t["start"] : t["end"]] for t in prediction["tokens"]] == [
            t["text"] for t in prediction["tokens"]
        ]
        assert sum(t["attention"] for t in prediction["tokens"]) == pytest.approx(1.0, abs=1e-5)
    assert "queue;dur=" in answer.headers["server-timing"]


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        (
            f"/v1/models/{MODEL}:predict",
            {"instances": []},
            422,
            "body.instances: List should have at least 1 item after validation, not 0",
        ),
        (
            f"/v1/models/{MODEL}:predict",
            {"instances": [3]},
            422,
            "body.instances.0: An instance must be a text, or an object with a 'text'",
        ),
        (
            f"/v1/models/{MODEL}:predict",
            {"instances": [{"txt": "hi"}]},
            422,
            "body.instances.0.object.text: Field required; "
            "body.instances.0.object.txt: Extra inputs are not permitted",
        ),
        (
            f"/v1/models/{MODEL}:predict",
            {"instances": ["   "]},
            422,
            "Text at index 0 is empty or has no tokens: there is nothing to classify.",
        ),
        (
            f"/v1/models/{MODEL}:predict",
            {"instances": ["a"] * 65},
            413,
            "Too many texts: 65 in one request, the limit is 64.",
        ),
        (
            "/v1/models/no-such-model:predict",
            {"instances": ["fine"]},
            404,
            "No model named 'no-such-model'. Known models: ",
        ),
        (
            f"/v1/models/{MODEL}:explain",
            {"instances": ["fine"]},
            404,
            f"KServe's :explain is not served. Each prediction of POST /v1/models/{MODEL}:predict "
            "carries its explanation",
        ),
    ],
)
def test_errors_take_kserves_shape(
    client: TestClient, path: str, body: dict[str, Any], status: int, error: str
) -> None:
    answer = client.post(path, json=body)

    assert answer.status_code == status
    assert list(answer.json()) == ["error"]
    assert answer.json()["error"].startswith(error)


def test_the_predict_verb_is_no_longer_taken_for_a_model_name(client: TestClient) -> None:
    # A GET still reads `:predict` as part of the name, as GET /v1/models/{name} always did.
    assert client.get(f"/v1/models/{MODEL}:predict").status_code == 404
    assert client.post(f"/v1/models/{MODEL}:predict", json={"instances": ["ok"]}).status_code == 200
