"""The HTTP API of the real app, serving the shipped model: answers, invariants, every error."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

# "cafe\u0301" is decomposed; its word still ends after the combining accent.
MIXED = "Crème brûlée 😀 was great! שלום עולם, and the cafe\u0301 was fine."


def _error(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def _invalid(*problems: tuple[str, str, str]) -> dict[str, Any]:
    return _error(
        "invalid_request",
        "; ".join(f"{field}: {message}" for field, message, _ in problems),
        {
            "errors": [
                {"field": field, "message": message, "type": kind}
                for field, message, kind in problems
            ]
        },
    )


def _predict(client: TestClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post("/v1/predict", json=body)
    assert response.status_code == 200, response.text
    predictions: list[dict[str, Any]] = response.json()["predictions"]
    return predictions


def test_predict_answers_one_text_with_label_probabilities_and_attended_tokens(
    client: TestClient, shipped_manifest: dict[str, Any]
) -> None:
    text = "The battery life is great but the screen is awful"
    response = client.post("/v1/predict", json={"text": text})

    assert response.status_code == 200
    body = response.json()
    assert (body["model"], body["version"]) == (
        shipped_manifest["name"],
        shipped_manifest["version"],
    )
    [prediction] = body["predictions"]
    labels = shipped_manifest["labels"]
    assert prediction["label"] in labels
    assert set(prediction["probabilities"]) == set(labels)
    assert math.isclose(sum(prediction["probabilities"].values()), 1.0, abs_tol=1e-5)
    assert prediction["score"] == max(prediction["probabilities"].values())
    assert prediction["score"] == prediction["probabilities"][prediction["label"]]
    assert prediction["truncated"] is False
    assert [token["text"] for token in prediction["tokens"]] == text.split()
    for token in prediction["tokens"]:
        assert token["text"] == text[token["start"] : token["end"]]
    weights = [token["attention"] for token in prediction["tokens"]]
    assert all(weight >= 0.0 for weight in weights)
    assert math.isclose(sum(weights), 1.0, abs_tol=1e-5)


def test_each_prediction_says_how_much_of_its_text_the_model_could_read(
    client: TestClient,
) -> None:
    known, emoji_only, half = _predict(
        client, {"texts": ["The battery life is great", "😍🔥 🎉", "great 🎉"]}
    )

    assert (known["readable"], known["unreadable"]) == (1.0, False)
    # every word is the unknown token: the label is a guess, and the answer says so
    assert (emoji_only["readable"], emoji_only["unreadable"]) == (0.0, True)
    assert (half["readable"], half["unreadable"]) == (0.5, False)


def test_predict_reports_stage_timings(client: TestClient) -> None:
    response = client.post("/v1/predict", json={"text": "fine"})

    parts = [part.split(";dur=") for part in response.headers["server-timing"].split(", ")]
    # waiting in the batcher's queue is its own stage, apart from the batch computing
    assert [stage for stage, _ in parts] == ["tokenize", "queue", "inference", "postprocess"]
    assert all(float(duration) >= 0.0 for _, duration in parts)


def test_offsets_index_the_original_text_for_accents_emoji_and_rtl(client: TestClient) -> None:
    [prediction] = _predict(client, {"text": MIXED})

    tokens = prediction["tokens"]
    for token in tokens:
        assert token["text"] == MIXED[token["start"] : token["end"]]
    surfaces = [token["text"] for token in tokens]
    # Offsets count code points of the text as sent (the emoji is one, not two UTF-16 units).
    for word in ("Crème", "brûlée", "😀", "שלום", "עולם", "cafe\u0301", "fine"):
        assert word in surfaces
        token = tokens[surfaces.index(word)]
        assert (token["start"], token["end"]) == (MIXED.index(word), MIXED.index(word) + len(word))
    assert math.isclose(sum(token["attention"] for token in tokens), 1.0, abs_tol=1e-5)


def test_a_text_longer_than_max_tokens_is_truncated_and_flagged(
    client: TestClient, shipped_manifest: dict[str, Any]
) -> None:
    # the special tokens a word-piece model reads ([CLS], [SEP]) take places of their own
    words = shipped_manifest["max_tokens"] - len(shipped_manifest["special_tokens"])
    text = " ".join(["good"] * (words + 7))

    [prediction] = _predict(client, {"text": text})

    assert prediction["truncated"] is True
    assert len(prediction["tokens"]) == words
    assert prediction["tokens"][-1]["end"] == 5 * words - 1
    assert math.isclose(
        sum(token["attention"] for token in prediction["tokens"]), 1.0, abs_tol=1e-5
    )


def test_predictions_come_in_the_order_of_the_texts(client: TestClient) -> None:
    texts = ["Awful, broke in a day.", "I love it", "ok", "Not worth the money at all."]

    predictions = _predict(client, {"texts": texts})

    assert [p["tokens"][0]["text"] for p in predictions] == ["Awful", "I", "ok", "Not"]
    assert [p["tokens"][-1]["end"] for p in predictions] == [len(text) for text in texts]


def test_a_batch_answers_each_text_as_it_would_be_answered_alone(client: TestClient) -> None:
    texts = ["short", "A much longer sentence that needs plenty of padding for the others.", MIXED]

    batched = _predict(client, {"texts": texts})
    alone = [_predict(client, {"text": text})[0] for text in texts]

    for together, single in zip(batched, alone, strict=True):
        assert together["label"] == single["label"]
        assert together["truncated"] == single["truncated"]
        for label, probability in single["probabilities"].items():
            assert together["probabilities"][label] == pytest.approx(probability, abs=1e-6)
        assert [(t["text"], t["start"], t["end"]) for t in together["tokens"]] == [
            (t["text"], t["start"], t["end"]) for t in single["tokens"]
        ]
        assert [t["attention"] for t in together["tokens"]] == pytest.approx(
            [t["attention"] for t in single["tokens"]], abs=1e-6
        )


def test_the_named_model_route_answers_like_the_default_route(
    client: TestClient, shipped_manifest: dict[str, Any]
) -> None:
    name = shipped_manifest["name"]

    named = client.post(f"/v1/models/{name}/predict", json={"text": "great"})
    default = client.post("/v1/predict", json={"text": "great"})

    assert named.status_code == 200
    assert named.json() == default.json()


def test_models_lists_the_manifest_public_part_and_the_provider(
    client: TestClient, shipped_manifest: dict[str, Any]
) -> None:
    public = [
        "name", "version", "architecture", "description", "labels", "max_tokens",
        "has_attention", "inputs", "outputs", "metrics", "parity", "faithfulness", "calibration",
        "created_at",
    ]  # fmt: skip
    expected = {key: shipped_manifest[key] for key in public} | {"provider": "CPUExecutionProvider"}
    # JSON has no tuples: parity shapes come back as lists either way.
    name = shipped_manifest["name"]

    listed = client.get("/v1/models")
    described = client.get(f"/v1/models/{name}")

    assert listed.status_code == 200
    assert listed.json()["default_model"] == name
    assert expected in listed.json()["models"]
    assert listed.json()["unavailable"] == []
    assert described.status_code == 200
    assert described.json() == expected


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


def test_openapi_documents_the_routes_with_their_docstrings(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    assert schema["paths"]["/v1/predict"]["post"]["description"] == (
        "Classify the sentiment of `text` or `texts` with the default model."
    )
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {"text": "a", "texts": ["b"]},
            _invalid(("body", "Give exactly one of 'text' or 'texts'.", "text_or_texts")),
            id="both",
        ),
        pytest.param(
            {},
            _invalid(("body", "Give exactly one of 'text' or 'texts'.", "text_or_texts")),
            id="neither",
        ),
        pytest.param(
            {"text": "a", "model": "x"},
            _invalid(("body.model", "Extra inputs are not permitted", "extra_forbidden")),
            id="extra-field",
        ),
        pytest.param(
            {"text": 3},
            _invalid(("body.text", "Input should be a valid string", "string_type")),
            id="wrong-type",
        ),
        pytest.param(
            {"texts": ["fine", None]},
            _invalid(("body.texts.1", "Input should be a valid string", "string_type")),
            id="wrong-item",
        ),
        pytest.param(
            {"texts": []},
            _invalid(
                (
                    "body.texts",
                    "List should have at least 1 item after validation, not 0",
                    "too_short",
                )
            ),
            id="no-texts",
        ),
    ],
)
def test_a_body_that_does_not_fit_the_schema_is_422_naming_the_field(
    client: TestClient, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    response = client.post("/v1/predict", json=body)

    assert (response.status_code, response.json()) == (422, expected)


def test_invalid_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/v1/predict", content=b'{"text": ', headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json() == _invalid(("body", "Invalid JSON: Expecting value", "json_invalid"))


@pytest.mark.parametrize("headers", [{}, {"content-type": "application/x-www-form-urlencoded"}])
def test_a_body_not_sent_as_json_is_422_saying_so(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.post("/v1/predict", content=b'{"text": "fine"}', headers=headers)

    assert (response.status_code, response.json()) == (
        422,
        _invalid(
            (
                "body",
                "Expected a JSON object sent with Content-Type: application/json",
                "model_attributes_type",
            )
        ),
    )


@pytest.mark.parametrize(
    ("body", "message", "indices"),
    [
        ({"text": ""}, "Text at index 0 is empty or has", [0]),
        ({"texts": ["fine", " \t\n", "ok", ""]}, "Texts at indices 1, 3 are empty or have", [1, 3]),
    ],
    ids=["empty", "whitespace"],
)
def test_a_text_with_nothing_to_classify_is_422_naming_its_index(
    client: TestClient, body: dict[str, Any], message: str, indices: list[int]
) -> None:
    response = client.post("/v1/predict", json=body)

    assert (response.status_code, response.json()) == (
        422,
        _error(
            "empty_text",
            f"{message} no tokens: there is nothing to classify.",
            {"indices": indices},
        ),
    )


def test_too_many_texts_is_413_stating_the_limit(client: TestClient) -> None:
    response = client.post("/v1/predict", json={"texts": ["ok"] * 65})

    assert (response.status_code, response.json()) == (
        413,
        _error(
            "too_many_texts",
            "Too many texts: 65 in one request, the limit is 64.",
            {"count": 65, "limit": 64},
        ),
    )


def test_a_text_too_long_is_413_stating_the_limit(client: TestClient) -> None:
    response = client.post("/v1/predict", json={"texts": ["ok", "x" * 5001]})

    assert (response.status_code, response.json()) == (
        413,
        _error(
            "text_too_long",
            "Text at index 1 has 5001 characters, the limit is 5000.",
            {"index": 1, "length": 5001, "limit": 5000},
        ),
    )


def test_an_unknown_model_is_404_naming_the_known_ones(client: TestClient) -> None:
    known = sorted(model["name"] for model in client.get("/v1/models").json()["models"])

    predict = client.post("/v1/models/nope/predict", json={"text": "ok"})
    describe = client.get("/v1/models/nope")

    expected = _error(
        "model_not_found",
        f"No model named 'nope'. Known models: {', '.join(known)}.",
        {"model": "nope", "known": known},
    )
    assert (predict.status_code, predict.json()) == (404, expected)
    assert (describe.status_code, describe.json()) == (404, expected)


def test_an_unknown_route_is_404_and_a_wrong_method_405(client: TestClient) -> None:
    missing = client.get("/v3/predict")
    wrong = client.get("/v1/predict")

    assert (missing.status_code, missing.json()) == (
        404,
        _error("not_found", "No route for GET /v3/predict."),
    )
    assert (wrong.status_code, wrong.json()) == (
        405,
        _error("method_not_allowed", "Method GET is not allowed on /v1/predict."),
    )
    assert wrong.headers["allow"] == "POST"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"])
def test_health_routes_answer_head_as_probes_send_it(client: TestClient, path: str) -> None:
    answer = client.head(path)

    assert answer.status_code == 200
    assert answer.content == b""
    assert int(answer.headers["content-length"]) > 0  # the GET body's length, unsent


def test_a_trailing_slash_is_not_redirected_to_a_host_the_client_named(
    client: TestClient,
) -> None:
    answer = client.get("/v1/models/", headers={"Host": "evil.example"}, follow_redirects=False)

    assert answer.status_code == 404
    assert "location" not in answer.headers
    assert answer.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_body_in_another_encoding_than_utf8_is_refused(client: TestClient, encoding: str) -> None:
    answer = client.post(
        "/v1/predict",
        content=json.dumps({"text": "fine"}).encode(encoding),
        headers={"content-type": "application/json"},
    )

    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_request"
    assert answer.json()["error"]["message"].startswith("body: Invalid JSON: not UTF-8")


def test_a_malformed_range_on_the_page_files_is_a_json_error(client: TestClient) -> None:
    malformed = client.get("/static/page.js", headers={"Range": "bytes=9-2"})
    beyond = client.get("/static/page.js", headers={"Range": "bytes=99999999-"})

    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "bad_request"
    assert beyond.status_code == 416
    assert beyond.json()["error"]["code"] == "requested_range_not_satisfiable"


def test_a_text_that_normalisation_expands_past_the_limit_is_413(client: TestClient) -> None:
    # U+FDFA is one character, eighteen once compatibility-normalised
    answer = client.post("/v1/predict", json={"texts": ["fine", "\ufdfa" * 1200]})

    assert answer.status_code == 413
    assert answer.json()["error"]["details"] == {
        "index": 1,
        "length": 21600,
        "limit": 20000,
        "normalized": True,
    }


def test_large_answers_are_gzipped_for_clients_that_accept_it_and_small_ones_are_not(
    client: TestClient,
) -> None:
    # every layer's and head's map over 120 words: megabytes of JSON
    heads = {"text": " ".join(["great battery"] * 60), "detail": "heads"}
    route = "/v1/models/transformer/predict"
    large = client.post(route, json=heads, headers={"Accept-Encoding": "gzip"})
    plain = client.post(route, json=heads, headers={"Accept-Encoding": "identity"})
    small = client.post("/v1/predict", json={"text": "fine"}, headers={"Accept-Encoding": "gzip"})

    assert len(plain.content) > 1024 * 1024
    assert large.headers["content-encoding"] == "gzip"
    assert large.headers["vary"] == "Accept-Encoding"
    assert int(large.headers["content-length"]) < len(large.content) / 2  # digits squeeze 2x
    assert large.json() == plain.json()  # the same answer, decompressed by the client
    assert "content-encoding" not in plain.headers
    assert "content-encoding" not in small.headers
