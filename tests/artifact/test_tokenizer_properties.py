"""Tokeniser and offset invariants on arbitrary Unicode, property-based (hypothesis).

Texts mix any code point but surrogates with the characters that break naive offset code:
combining marks, zero-width and bidi controls, NUL, ligatures that NFKD expands, emoji
sequences; plus very long words and 1 MB strings. Lone surrogates are not characters: the
API refuses them (422, see `test_a_lone_surrogate_is_refused_by_name`), and JSON over UTF-8
cannot carry them unescaped.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from attnserve.artifact.tokenizer import EncodedText
from attnserve.service.app import create_app
from attnserve.service.loading import LoadedModel
from tests.conftest import WORD_MODEL, cpu_settings

TRICKY = [
    "\u0301",  # combining acute accent
    "\u0308\u0323",  # stacked combining marks
    "\u200b",  # zero-width space
    "\u200c\u200d",  # zero-width non-joiner, joiner
    "\ufeff",  # byte-order mark / zero-width no-break space
    "\u202e",  # right-to-left override
    "\u2066\u2069",  # bidi isolates
    "\u0000",  # NUL
    "\ufb01",  # the ligature fi, two letters after NFKD
    "\u2460",  # circled 1, '1' after NFKD
    "\U0001f469\u200d\U0001f4bb",  # emoji ZWJ sequence
    "\u00a0",  # no-break space
    "\u3000",  # ideographic space
    " ",
    "\n",
    "good",
    "awful",
    "!",
]
characters = st.characters(exclude_categories=["Cs"])
texts = st.lists(st.one_of(st.text(characters, max_size=8), st.sampled_from(TRICKY))).map("".join)
# Derandomized: CI runs the same 300 examples each time (a failure reproduces); explore more
# locally with --hypothesis-seed=random.
PROPERTY = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def check_invariants(text: str, item: EncodedText, max_tokens: int, full_count: int) -> None:
    """Spans are in bounds, non-empty, in order and disjoint; only separators are left out."""
    assert len(item.ids) == len(item.offsets) == min(full_count, max_tokens)
    assert item.truncated == (full_count > max_tokens)
    previous_end = 0
    for start, end in item.offsets:
        assert previous_end <= start < end <= len(text), (item.offsets, len(text))
        assert all(map(_separates, text[previous_end:start])), text[previous_end:start]
        previous_end = end
    if not item.truncated:
        assert all(map(_separates, text[previous_end:])), text[previous_end:]


def _separates(character: str) -> bool:
    """Whitespace, or a character whose NFKD form holds some: U+00B4 is a space + U+0301."""
    return any(c.isspace() for c in unicodedata.normalize("NFKD", character))


def _full_count(model: LoadedModel, text: str) -> int:
    # the encoder's own tokenizer truncates; a copy without truncation counts every token
    untruncated = Tokenizer.from_str(model.encoder.tokenizer.to_str())
    untruncated.no_truncation()
    return len(untruncated.encode(text, add_special_tokens=False).ids)


@PROPERTY
@given(text=texts)
def test_offsets_index_the_original_text(word_model: LoadedModel, text: str) -> None:
    [item] = word_model.encoder.encode([text])

    check_invariants(text, item, word_model.encoder.max_tokens, _full_count(word_model, text))


@PROPERTY
@given(batch=st.lists(texts, min_size=1, max_size=5))
def test_a_batch_encodes_each_text_as_alone(loaded_model: LoadedModel, batch: list[str]) -> None:
    assert loaded_model.encoder.encode(batch) == [
        loaded_model.encoder.encode([text])[0] for text in batch
    ]


@PROPERTY
@given(text=st.text(st.characters(max_codepoint=127)))
def test_an_ascii_text_encodes_as_the_whole_tokenizer_encodes_it(
    word_model: LoadedModel, text: str
) -> None:
    """ASCII texts skip the word model's NFKD step (it changes none of them): the same tokens
    and offsets as its shipped tokenizer, normalisation and all, gives."""
    encoder = word_model.encoder
    assert "NFKD" in encoder.tokenizer.to_str()
    assert "NFKD" not in encoder._ascii_tokenizer.to_str()

    [item] = encoder.encode([text])

    whole = encoder.tokenizer.encode(text)
    assert (item.ids, item.offsets) == (whole.ids, whole.offsets)


@pytest.mark.parametrize(
    "text",
    [
        "a" * 1_000_000,  # one 1 MB word
        ("good " * 200_000)[:1_000_000],  # a 1 MB string of 200,000 words
        "\u0301" * 1_000_000,  # a 1 MB run of combining marks
        ("e\u0301\u200b\u202e\u0000 " * 200_000)[:1_000_000],
    ],
    ids=["one-word", "many-words", "combining-marks", "mixed-controls"],
)
def test_one_megabyte_strings(word_model: LoadedModel, text: str) -> None:
    [item] = word_model.encoder.encode([text])

    check_invariants(text, item, word_model.encoder.max_tokens, _full_count(word_model, text))


@pytest.fixture(scope="module")
def roomy(shipped_repository: Path) -> Iterator[TestClient]:
    settings = cpu_settings(
        shipped_repository, max_text_chars=1_000_000, max_body_bytes=8 * 1024 * 1024
    )
    with TestClient(create_app(settings)) as client:
        yield client


@PROPERTY
@given(text=texts)
@pytest.mark.parametrize("route", ["/v1/predict", f"/v1/models/{WORD_MODEL}/predict"])
def test_the_api_answers_any_text_with_tokens_that_are_its_spans(
    client: TestClient, route: str, text: str
) -> None:
    response = client.post(route, json={"text": text})

    if response.status_code == 422:
        assert response.json()["error"]["code"] == "empty_text"
        # the default's word-piece normaliser also drops control characters and accents
        if route.endswith(f"/{WORD_MODEL}/predict"):
            assert all(map(_separates, text))  # only separators in it
        return
    assert response.status_code == 200, response.text
    [prediction] = response.json()["predictions"]
    for token in prediction["tokens"]:
        assert token["text"] == text[token["start"] : token["end"]]
    assert sum(token["attention"] for token in prediction["tokens"]) == pytest.approx(1, abs=1e-4)


@pytest.mark.parametrize(
    ("text", "truncated"),
    [("a" * 1_000_000, False), (("good \u0301\u200b " * 100_000)[:1_000_000], True)],
    ids=["one-word", "many-words"],
)
def test_the_api_answers_a_one_megabyte_text(roomy: TestClient, text: str, truncated: bool) -> None:
    response = roomy.post("/v1/predict", json={"text": text})

    assert response.status_code == 200
    [prediction] = response.json()["predictions"]
    assert prediction["truncated"] is truncated
    assert all(t["text"] == text[t["start"] : t["end"]] for t in prediction["tokens"])


@settings(max_examples=50, deadline=None, derandomize=True)
@given(
    before=st.text(characters),
    surrogate=st.characters(categories=["Cs"]),
    after=st.text(characters),
)
def test_a_lone_surrogate_is_refused_by_name(
    client: TestClient, before: str, surrogate: str, after: str
) -> None:
    # json= cannot encode it: send the JSON escape a client would send.
    escaped = json.dumps(before)[:-1] + f"\\u{ord(surrogate):04x}" + json.dumps(after)[1:]
    body = '{"text": ' + escaped + "}"

    response = client.post(
        "/v1/predict", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    [problem] = response.json()["error"]["details"]["errors"]
    assert (problem["field"], problem["type"]) == ("body.text", "lone_surrogate")
