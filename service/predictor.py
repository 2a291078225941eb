"""Texts in, `Predictions` out: limits, tokenisation, one padded batch through the model's
runner, labels and per-word attention."""

from __future__ import annotations

import asyncio
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from attnserve.artifact.graph import HEADS_OUTPUT
from attnserve.artifact.tokenizer import (
    EncodedText,
    piece_attention,
    piece_spans,
    readable_share,
    word_attention,
)
from attnserve.service.errors import (
    DetailUnavailable,
    EmptyText,
    HeadsTooLarge,
    Overloaded,
    TextTooLong,
    TooManyTexts,
)
from attnserve.service.inference import Runner
from attnserve.service.loading import LoadedModel
from attnserve.service.predictions import Predictions, Spans, Timings
from attnserve.service.schemas import ModelInfo

PIECES_DETAIL = "pieces"


# A text may grow this much under compatibility normalisation (a Hangul syllable is three
# jamo) before its length counts against it: some characters expand to eighteen.
NORMALIZED_GROWTH = 4
# Requests with more characters than this (once normalised) are tokenised off the event loop,
# in the model's one tokenising thread: a few milliseconds of work stays on the loop, where
# it costs less than a hand-off; what could hold the loop for tens of them does not.
TOKENIZE_IN_THREAD_CHARS = 100_000


@dataclass(frozen=True)
class Limits:
    """What one request may ask of a model (413 past any)."""

    max_texts: int
    max_chars: int
    max_heads_values: int


class Predictor:
    """Predicts with one loaded model, through its runner (a batcher, or the session alone)."""

    def __init__(self, model: LoadedModel, runner: Runner, limits: Limits) -> None:
        self.model = model
        self.manifest = model.manifest
        self.runner = runner
        self.limits = limits
        self.info = ModelInfo(
            **self.manifest.model_dump(include=set(ModelInfo.model_fields) - {"provider"}),
            provider=model.provider,
        )
        self.outputs = [spec.name for spec in self.manifest.outputs]
        # one thread: several would contend with the event loop for the interpreter
        self._tokenizing = ThreadPoolExecutor(
            1, thread_name_prefix=f"tokenize-{model.manifest.name}"
        )

    def refusal(self) -> Overloaded | None:
        """Overloaded while the runner has no room for a request of the most texts."""
        return self.runner.refusal(self.limits.max_texts)

    async def predict(
        self, texts: list[str], detail: str | None = None, alone: bool = False
    ) -> Predictions:
        """Checks the limits, tokenises and pads once (raising before any inference), runs the
        batch, and gives each text its label and its words' attention.

        `alone`: the caller knows of no other request under way, so a small batch may compute
        right here (`Runner.run_now`), unless other requests have queued for the model once
        those that arrived with this one have started."""
        start = time.perf_counter()
        heads = detail == HEADS_OUTPUT
        if heads and HEADS_OUTPUT not in self.outputs:
            raise DetailUnavailable(detail or HEADS_OUTPUT, self.manifest.name)
        if len(texts) > self.limits.max_texts:
            raise TooManyTexts(len(texts), self.limits.max_texts)
        size = self._checked_size(texts)
        encoder = self.model.encoder
        if size > TOKENIZE_IN_THREAD_CHARS:
            loop = asyncio.get_running_loop()
            encoded = await loop.run_in_executor(self._tokenizing, encoder.encode, texts)
        else:
            encoded = encoder.encode(texts)
        empty = [index for index, item in enumerate(encoded) if not item.ids]
        if empty:
            raise EmptyText(empty)
        if heads:
            self._check_heads_size(encoded)
        batch = encoder.pad(encoded)
        tokenize_ms = _ms_since(start)

        computed = None
        if alone and not heads:
            # Requests read with this one start first: then it has company, and queues.
            await asyncio.sleep(0)
            computed = self.runner.run_now(batch)
        if computed is None:
            computed = await self.runner.run(batch, heads=heads)

        start = time.perf_counter()
        outputs = computed.outputs
        attention = outputs.attention if self.manifest.has_attention else None
        # Padding columns are dropped; word pieces are summed into their words.
        words = [
            Spans(item.words, None if attention is None else word_attention(item, attention[row]))
            for row, item in enumerate(encoded)
        ]
        pieces = None
        if detail == PIECES_DETAIL:
            pieces = [
                Spans(
                    piece_spans(text, item),
                    None if attention is None else piece_attention(item, attention[row]),
                )
                for row, (text, item) in enumerate(zip(texts, encoded, strict=True))
            ]
        per_text_heads = None
        if outputs.heads is not None:
            # padding rows and columns are dropped
            per_text_heads = [
                outputs.heads[row, :, :, : len(item.ids), : len(item.ids)]
                for row, item in enumerate(encoded)
            ]
        return Predictions(
            model=self.manifest.name,
            version=self.manifest.version,
            labels=self.manifest.labels,
            texts=texts,
            probabilities=outputs.probabilities,
            words=words,
            truncated=[item.truncated for item in encoded],
            readable=[readable_share(item, encoder.unk_id) for item in encoded],
            timings=Timings(
                tokenize_ms=tokenize_ms,
                queue_ms=computed.queue_ms,
                inference_ms=computed.inference_ms,
                postprocess_ms=_ms_since(start),
            ),
            pieces=pieces,
            heads=per_text_heads,
        )

    def _checked_size(self, texts: list[str]) -> int:
        """The characters the tokenizer will work through, once normalised; each text within
        `max_chars`, and within NORMALIZED_GROWTH times that once normalised."""
        limit = self.limits.max_chars
        size = 0
        for index, text in enumerate(texts):
            if len(text) > limit:
                raise TextTooLong(index, len(text), limit)
            normalized = len(text) if text.isascii() else len(unicodedata.normalize("NFKD", text))
            if normalized > NORMALIZED_GROWTH * limit:
                raise TextTooLong(index, normalized, NORMALIZED_GROWTH * limit, True)
            size += normalized
        return size

    def _check_heads_size(self, encoded: list[EncodedText]) -> None:
        """The heads answer's size: layers x heads x tokens x tokens weights for each text."""
        [spec] = [spec for spec in self.manifest.outputs if spec.name == HEADS_OUTPUT]
        layers, heads = spec.shape[1], spec.shape[2]
        per_token_pair = layers * heads if isinstance(layers, int) and isinstance(heads, int) else 1
        values = per_token_pair * sum(len(item.ids) ** 2 for item in encoded)
        if values > self.limits.max_heads_values:
            raise HeadsTooLarge(values, self.limits.max_heads_values)

    async def close(self) -> None:
        """Stops the runner (a batcher's worker) and the tokenising thread."""
        await self.runner.close()
        self._tokenizing.shutdown(wait=False)


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
