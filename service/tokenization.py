"""Text -> token ids + character offsets, shared by training, export parity and serving.

The tokenizer is a `tokenizers` JSON trained by `models/tokenizer.py`. Offsets index the
ORIGINAL text (before normalisation), so `text[start:end]` is the token's surface form.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"


@dataclass(frozen=True)
class EncodedText:
    """One text's tokens: ids, (start, end) character offsets, and whether it was cut."""

    ids: list[int]
    offsets: list[tuple[int, int]]
    truncated: bool


@dataclass(frozen=True)
class PaddedBatch:
    """Texts padded once to the longest: int64 arrays of shape (batch, length)."""

    input_ids: npt.NDArray[np.int64]
    attention_mask: npt.NDArray[np.int64]


class TextEncoder:
    """Tokenises texts with offsets, truncates to `max_tokens`, pads batches."""

    def __init__(self, tokenizer: Tokenizer, max_tokens: int) -> None:
        pad_id = tokenizer.token_to_id(PAD_TOKEN)
        unk_id = tokenizer.token_to_id(UNK_TOKEN)
        if pad_id is None or unk_id is None:
            raise ValueError(f"tokenizer lacks {PAD_TOKEN} or {UNK_TOKEN}")
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.pad_id: int = pad_id
        self.unk_id: int = unk_id

    @classmethod
    def from_file(cls, path: Path, max_tokens: int) -> TextEncoder:
        return cls(Tokenizer.from_file(str(path)), max_tokens)

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size())

    def encode(self, texts: list[str]) -> list[EncodedText]:
        """Tokens of each text; a text may come back with no tokens (empty, whitespace)."""
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        return [
            EncodedText(
                ids=enc.ids[: self.max_tokens],
                offsets=enc.offsets[: self.max_tokens],
                truncated=len(enc.ids) > self.max_tokens,
            )
            for enc in encodings
        ]

    def pad(self, encoded: list[EncodedText]) -> PaddedBatch:
        """Pads to the longest text. Every row must hold at least one token."""
        if any(not item.ids for item in encoded):
            raise ValueError("every text must have at least one token")
        length = max(len(item.ids) for item in encoded)
        input_ids = np.full((len(encoded), length), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(encoded), length), dtype=np.int64)
        for row, item in enumerate(encoded):
            input_ids[row, : len(item.ids)] = item.ids
            attention_mask[row, : len(item.ids)] = 1
        return PaddedBatch(input_ids=input_ids, attention_mask=attention_mask)
