"""The word-level tokenizer, trained on the training split and shipped as `tokenizer.json`."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel
from tokenizers.trainers import WordLevelTrainer

from attnserve.artifact.tokenizer import PAD_TOKEN, UNK_TOKEN


def train_tokenizer(
    texts: Iterable[str], *, vocab_size: int = 8000, min_frequency: int = 1
) -> Tokenizer:
    """Lower-cased NFKD words and single punctuation marks; [PAD] is id 0, [UNK] id 1."""
    tokenizer = Tokenizer(WordLevel(unk_token=UNK_TOKEN))
    # NFKD, not NFKC: composing (e + U+0301 -> é, Hangul jamo -> syllable) loses the end of
    # the token's offsets in `tokenizers` (huggingface/tokenizers#1201); decomposing keeps
    # them exact and still folds ligatures, full-width forms and composed/decomposed accents.
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = WordLevelTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[PAD_TOKEN, UNK_TOKEN],
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer
