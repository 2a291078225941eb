"""Text -> token ids + character offsets, shared by training, export parity and serving.

The tokenizer is a `tokenizers` JSON: a word-level one trained by `models/vocabulary.py`, or a
pretrained word-piece one whose post-processor adds [CLS]/[SEP]. Either way the answer is
given in words: a word-level token is a word; word pieces are grouped by the tokenizer's word
ids. Offsets index the ORIGINAL text (before normalisation), so `text[start:end]` is the
word's surface form.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from tokenizers import Encoding, Tokenizer
from tokenizers.models import WordLevel

from attnserve.artifact.graph import PaddedBatch

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
_FIRST_MARK = "\u0300"  # no character below it is a combining mark
# Unicode normal forms: each leaves an ASCII text as it is.
_UNICODE_FORMS = frozenset({"NFC", "NFD", "NFKC", "NFKD"})


@dataclass(frozen=True)
class EncodedText:
    """One text as the model reads it, and the words its answer is given in.

    `ids`, `offsets` and `word_ids` have one entry per position the model reads, special
    tokens ([CLS], [SEP]) included: those have offset (0, 0) and word None. `word_ids[i]`
    indexes `words`, the (start, end) character spans of the text's words (a word-level
    tokenizer's tokens, or a word-piece tokenizer's whole words). A text without a word has
    no ids at all.
    """

    ids: list[int]
    offsets: list[tuple[int, int]]
    word_ids: list[int | None]
    words: list[tuple[int, int]]
    truncated: bool


class TextEncoder:
    """Tokenises texts with offsets, truncates to `max_tokens`, pads batches."""

    def __init__(self, tokenizer: Tokenizer, max_tokens: int) -> None:
        pad_id = tokenizer.token_to_id(PAD_TOKEN)
        unk_id = tokenizer.token_to_id(UNK_TOKEN)
        if pad_id is None or unk_id is None:
            raise ValueError(f"tokenizer lacks {PAD_TOKEN} or {UNK_TOKEN}")
        tokenizer.no_padding()
        # the tokenizer truncates the text's own tokens so that, with the special tokens its
        # post-processor adds (none for a word-level tokenizer), at most max_tokens remain
        tokenizer.enable_truncation(max_tokens, direction="right")
        self.tokenizer = tokenizer
        self._ascii_tokenizer = _for_ascii(tokenizer)
        self.max_tokens = max_tokens
        self.pad_id: int = pad_id
        self.unk_id: int = unk_id
        probe = tokenizer.encode("a")
        # what the tokenizer adds around every text: [CLS] and [SEP] for a word-piece one
        self.special_tokens: list[str] = [
            token
            for token, special in zip(probe.tokens, probe.special_tokens_mask, strict=True)
            if special
        ]
        self.special_token_ids: list[int] = [
            token_id
            for token_id, special in zip(probe.ids, probe.special_tokens_mask, strict=True)
            if special
        ]
        if max_tokens <= len(self.special_tokens):
            raise ValueError(
                f"max_tokens {max_tokens} leaves no room beside {len(self.special_tokens)} "
                "special tokens"
            )

    @classmethod
    def from_file(cls, path: Path, max_tokens: int) -> TextEncoder:
        return cls(Tokenizer.from_file(str(path)), max_tokens)

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size())

    @property
    def tokenization(self) -> Literal["words", "wordpieces"]:
        """words for a word-level tokenizer, wordpieces for one that splits words."""
        return "words" if isinstance(self.tokenizer.model, WordLevel) else "wordpieces"

    def encode(self, texts: list[str]) -> list[EncodedText]:
        """Tokens of each text; a text may come back with no tokens (empty, whitespace)."""
        tokenizer = (
            self._ascii_tokenizer if all(text.isascii() for text in texts) else self.tokenizer
        )
        # one text: the batch encoder's hand-off to its thread pool costs more than it saves
        encodings = (
            [tokenizer.encode(texts[0])] if len(texts) == 1 else tokenizer.encode_batch(texts)
        )
        return [_encoded(text, enc) for text, enc in zip(texts, encodings, strict=True)]

    def pad(self, encoded: list[EncodedText]) -> PaddedBatch:
        """Pads to the longest text. Every row must hold at least one token."""
        if any(not item.ids for item in encoded):
            raise ValueError("every text must have at least one token")
        if len(encoded) == 1:  # nothing to pad
            ids = np.array([encoded[0].ids], dtype=np.int64)
            return PaddedBatch(input_ids=ids, attention_mask=np.ones_like(ids))
        length = max(len(item.ids) for item in encoded)
        input_ids = np.full((len(encoded), length), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(encoded), length), dtype=np.int64)
        for row, item in enumerate(encoded):
            input_ids[row, : len(item.ids)] = item.ids
            attention_mask[row, : len(item.ids)] = 1
        return PaddedBatch(input_ids=input_ids, attention_mask=attention_mask)


def _for_ascii(tokenizer: Tokenizer) -> Tokenizer:
    """`tokenizer` without its Unicode normalisation, which changes no ASCII text (and costs a
    word-level tokenizer about a third of its time); `tokenizer` itself when it has none."""
    config = json.loads(tokenizer.to_str())
    normalizer = config.get("normalizer") or {"type": None}
    if normalizer["type"] in _UNICODE_FORMS:
        config["normalizer"] = None
    elif normalizer["type"] == "Sequence":
        steps = normalizer["normalizers"]
        kept = [step for step in steps if step["type"] not in _UNICODE_FORMS]
        if len(kept) == len(steps):
            return tokenizer
        config["normalizer"] = {"type": "Sequence", "normalizers": kept}
    else:
        return tokenizer
    return Tokenizer.from_str(json.dumps(config))


def _encoded(text: str, enc: Encoding) -> EncodedText:
    """Numbers a text's words densely and spans each over its pieces and trailing marks."""
    if all(enc.special_tokens_mask):
        return EncodedText(ids=[], offsets=[], word_ids=[], words=[], truncated=False)
    offsets = enc.offsets
    word_ids: list[int | None] = enc.word_ids
    # a word per position and no special token: a word-level tokenizer's encodings
    if word_ids[0] == 0 and word_ids == list(range(len(offsets))):
        spans = offsets
    else:
        word_ids, spans = _words_of_pieces(offsets, word_ids, enc.special_tokens_mask)
    return EncodedText(
        ids=enc.ids,
        offsets=offsets,
        word_ids=word_ids,
        # an ASCII text has no combining mark to step past
        words=spans
        if text.isascii()
        else [(start, _past_marks(text, end)) for start, end in spans],
        truncated=bool(enc.overflowing),
    )


def _words_of_pieces(
    offsets: list[tuple[int, int]], tokenizer_words: list[int | None], special: list[int]
) -> tuple[list[int | None], list[tuple[int, int]]]:
    """Each position's word, numbered densely (None for a special token), and each word's span
    over its pieces."""
    word_ids: list[int | None] = []
    starts: list[int] = []
    ends: list[int] = []
    index_of: dict[int, int] = {}
    for (start, end), word, is_special in zip(offsets, tokenizer_words, special, strict=True):
        if is_special or word is None:
            word_ids.append(None)
            continue
        index = index_of.get(word)
        if index is None:
            index = index_of[word] = len(starts)
            starts.append(start)
            ends.append(end)
        else:
            starts[index] = min(starts[index], start)
            ends[index] = max(ends[index], end)
        word_ids.append(index)
    return word_ids, list(zip(starts, ends, strict=True))


def word_attention(
    item: EncodedText, attention: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Each word's weight: the sum over its positions in `attention` (one row, (T,))."""
    if len(item.words) == len(item.ids):  # a word per position: the weights are the words'
        return attention[: len(item.ids)]
    positions = [position for position, word in enumerate(item.word_ids) if word is not None]
    words = [word for word in item.word_ids if word is not None]
    summed = np.bincount(words, weights=attention[positions], minlength=len(item.words))
    return summed.astype(np.float32)


def readable_share(item: EncodedText, unk_id: int) -> float:
    """The share of the text's words the model knows: a word read only as the unknown token
    (an emoji, a script the vocabulary never saw) is not read. 0 for a text of no word."""
    if not item.words:
        return 0.0
    known = {
        word
        for token_id, word in zip(item.ids, item.word_ids, strict=True)
        if word is not None and token_id != unk_id
    }
    return len(known) / len(item.words)


def piece_spans(text: str, item: EncodedText) -> list[tuple[int, int]]:
    """The span of each piece the model read, special tokens left out, in reading order."""
    return [
        (start, _past_marks(text, end))
        for (start, end), word in zip(item.offsets, item.word_ids, strict=True)
        if word is not None
    ]


def piece_attention(
    item: EncodedText, attention: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """The weights of the pieces `piece_spans` lists, from one row of `attention` ((T,))."""
    return attention[[position for position, word in enumerate(item.word_ids) if word is not None]]


def _past_marks(text: str, end: int) -> int:
    """`end` moved past combining marks that a normaliser stripped (e + U+0301 -> e)."""
    while (
        end < len(text)
        and text[end] >= _FIRST_MARK
        and unicodedata.category(text[end]).startswith("M")
    ):
        end += 1
    return end
