"""The trained tokenizer: special ids, normalisation, and offsets into the original text."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from attnserve.artifact.tokenizer import PAD_TOKEN, UNK_TOKEN, TextEncoder
from attnserve.models.vocabulary import train_tokenizer

COMPOSED = "Caf\u00e9 was great"
DECOMPOSED = "Cafe\u0301 was great"
CORPUS = [COMPOSED, "Great phone, bad battery!", "שלום עולם", "مرحبا بالعالم", "so good 😀"]


def surface_forms(encoder: TextEncoder, text: str) -> list[str]:
    (encoded,) = encoder.encode([text])
    return [text[start:end] for start, end in encoded.offsets]


def tokens(tokenizer: Tokenizer, text: str) -> list[str]:
    found: list[str] = tokenizer.encode(text, add_special_tokens=False).tokens
    return found


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return train_tokenizer(CORPUS)


def test_special_tokens_have_fixed_ids(tokenizer: Tokenizer) -> None:
    assert tokenizer.token_to_id(PAD_TOKEN) == 0
    assert tokenizer.token_to_id(UNK_TOKEN) == 1
    encoder = TextEncoder(tokenizer, 128)
    assert (encoder.pad_id, encoder.unk_id) == (0, 1)
    assert encoder.encode(["zebra"])[0].ids == [1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (COMPOSED, ["Caf\u00e9", "was", "great"]),
        (DECOMPOSED, ["Cafe\u0301", "was", "great"]),
        ("Cre\u0300me bru\u0302le\u0301e.", ["Cre\u0300me", "bru\u0302le\u0301e", "."]),
        ("so good 😀!", ["so", "good", "😀", "!"]),
        ("שלום עולם", ["שלום", "עולם"]),
        ("مرحبا بالعالم", ["مرحبا", "بالعالم"]),
        ("\ufb01ne \uff27\uff2f\uff2f\uff24", ["\ufb01ne", "\uff27\uff2f\uff2f\uff24"]),
        ("\u1100\u1161\u11a8 x", ["\u1100\u1161\u11a8", "x"]),
        ("Great phone, bad battery!", ["Great", "phone", ",", "bad", "battery", "!"]),
        ("  wait...what?!", ["wait", ".", ".", ".", "what", "?", "!"]),
    ],
)
def test_offsets_give_the_surface_form_in_the_original_text(
    tokenizer: Tokenizer, text: str, expected: list[str]
) -> None:
    assert surface_forms(TextEncoder(tokenizer, 128), text) == expected


def test_normalisation_folds_case_width_ligatures_and_accent_forms(tokenizer: Tokenizer) -> None:
    assert tokens(tokenizer, DECOMPOSED) == tokens(tokenizer, COMPOSED)
    assert tokens(tokenizer, COMPOSED) == [
        unicodedata.normalize("NFKD", "caf\u00e9"),
        "was",
        "great",
    ]
    assert tokens(tokenizer, "GREAT Phone") == ["great", "phone"]
    assert tokens(tokenizer, "\uff27\uff32\uff25\uff21\uff34") == ["great"]  # full-width
    trained = train_tokenizer(["\ufb01ne"])
    assert tokens(trained, "fine") == ["fine"]  # the ligature was learned as two letters


def test_vocab_size_and_min_frequency_are_honoured() -> None:
    texts = ["a a a a b b b c c d", "e"]
    assert set(train_tokenizer(texts, vocab_size=4).get_vocab()) == {PAD_TOKEN, UNK_TOKEN, "a", "b"}
    full = train_tokenizer(texts)
    assert full.get_vocab_size() == 7
    frequent = train_tokenizer(texts, min_frequency=3)
    assert set(frequent.get_vocab()) == {PAD_TOKEN, UNK_TOKEN, "a", "b"}


def test_saved_tokenizer_round_trips(tokenizer: Tokenizer, tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))
    reloaded = Tokenizer.from_file(str(path))
    text = "Cafe\u0301 was GREAT 😀"
    assert reloaded.encode(text).ids == tokenizer.encode(text).ids
    assert reloaded.encode(text).offsets == tokenizer.encode(text).offsets
