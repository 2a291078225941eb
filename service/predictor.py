"""Texts in, typed predictions out: limits, tokenisation, one padded batch, labels and offsets."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic_core import to_json

from attnserve.artifact.manifest import HEADS_OUTPUT
from attnserve.artifact.tokenizer import (
    EncodedText,
    PaddedBatch,
    piece_attention,
    piece_spans,
    word_attention,
)
from attnserve.service.batching import BatchingRunner
from attnserve.service.errors import (
    DetailUnavailable,
    EmptyText,
    Overloaded,
    TextTooLong,
    TooManyTexts,
)
from attnserve.service.heads import run_with_heads
from attnserve.service.inference import InferenceOutput, InferenceRunner, OnnxModelRunner
from attnserve.service.loading import LoadedModel
from attnserve.service.schemas import ModelInfo, PredictResponse
from attnserve.service.settings import Settings

PIECES_DETAIL = "pieces"


@dataclass(frozen=True)
class PredictResult:
    """A response, and how long each stage took in milliseconds (in the order they ran).

    `body` is the response as the JSON it is sent as: built here, to PredictResponse's shape,
    so the service encodes it without validating its own output again; `response` is the
    typed form, validated on first use, for tools.
    """

    body: dict[str, Any]
    timings: dict[str, float]

    @property
    def model(self) -> str:
        model: str = self.body["model"]
        return model

    @cached_property
    def response(self) -> PredictResponse:
        return PredictResponse.model_validate(self.body)

    @property
    def predictions(self) -> list[dict[str, Any]]:
        predictions: list[dict[str, Any]] = self.body["predictions"]
        return predictions

    def json(self) -> bytes:
        return to_json(self.body)


@dataclass(frozen=True)
class _Prepared:
    texts: list[str]
    encoded: list[EncodedText]
    batch: PaddedBatch
    tokenize_ms: float
    pieces: bool  # the answer lists each text's pieces too


class Predictor:
    """Predicts with one loaded model; `predict` for the service, `predict_sync` for tools."""

    def __init__(
        self, model: LoadedModel, settings: Settings, runner: InferenceRunner | None = None
    ) -> None:
        self.model = model
        self.manifest = model.manifest
        self.max_texts = settings.max_texts_per_request
        self.max_chars = settings.max_text_chars
        self.runner = runner if runner is not None else _default_runner(model, settings)
        self.info = ModelInfo(
            **self.manifest.model_dump(include=set(ModelInfo.model_fields) - {"provider"}),
            provider=model.provider,
        )
        self.outputs = [spec.name for spec in self.manifest.outputs]

    async def predict(self, texts: list[str], detail: str | None = None) -> PredictResult:
        prepared = self._prepare(texts, detail)
        start = time.perf_counter()
        if detail != HEADS_OUTPUT:
            output = await self.runner.run(prepared.batch)
            return self._finish(prepared, output, _ms_since(start))
        output, heads = await asyncio.to_thread(run_with_heads, self.model.session, prepared.batch)
        return self._finish(prepared, output, _ms_since(start), heads)

    def overloaded(self) -> Overloaded | None:
        """Overloaded while the batcher's queue has no room for a request of the most texts."""
        if isinstance(self.runner, BatchingRunner):
            return self.runner.refusal(self.max_texts)
        return None

    async def close(self) -> None:
        """Stops the batcher, if there is one."""
        if isinstance(self.runner, BatchingRunner):
            await self.runner.close()

    def predict_sync(self, texts: list[str], detail: str | None = None) -> PredictResult:
        prepared = self._prepare(texts, detail)
        start = time.perf_counter()
        if detail != HEADS_OUTPUT:
            output = self.runner.run_sync(prepared.batch)
            return self._finish(prepared, output, _ms_since(start))
        output, heads = run_with_heads(self.model.session, prepared.batch)
        return self._finish(prepared, output, _ms_since(start), heads)

    def _prepare(self, texts: list[str], detail: str | None = None) -> _Prepared:
        """Checks the limits, then tokenises and pads once; raises before any inference."""
        start = time.perf_counter()
        if detail == HEADS_OUTPUT and detail not in self.outputs:
            raise DetailUnavailable(detail, self.manifest.name)
        if len(texts) > self.max_texts:
            raise TooManyTexts(len(texts), self.max_texts)
        for index, text in enumerate(texts):
            if len(text) > self.max_chars:
                raise TextTooLong(index, len(text), self.max_chars)
        encoded = self.model.encoder.encode(texts)
        empty = [index for index, item in enumerate(encoded) if not item.ids]
        if empty:
            raise EmptyText(empty)
        batch = self.model.encoder.pad(encoded)
        return _Prepared(texts, encoded, batch, _ms_since(start), detail == PIECES_DETAIL)

    def _finish(
        self,
        prepared: _Prepared,
        output: InferenceOutput,
        inference_ms: float,
        heads: npt.NDArray[np.float32] | None = None,
    ) -> PredictResult:
        start = time.perf_counter()
        predictions = [
            self._prediction(text, item, output, row, prepared.pieces)
            for row, (text, item) in enumerate(zip(prepared.texts, prepared.encoded, strict=True))
        ]
        if heads is not None:
            for row, (prediction, item) in enumerate(
                zip(predictions, prepared.encoded, strict=True)
            ):
                length = len(item.ids)  # padding rows and columns are dropped
                prediction["heads"] = heads[row, :, :, :length, :length].tolist()
        body = {
            "model": self.manifest.name,
            "version": self.manifest.version,
            "predictions": predictions,
        }
        timings = {
            "tokenize": prepared.tokenize_ms,
            "inference": inference_ms,
            "postprocess": _ms_since(start),
        }
        return PredictResult(body, timings)

    def _prediction(
        self, text: str, item: EncodedText, output: InferenceOutput, row: int, pieces: bool
    ) -> dict[str, Any]:
        """One `Prediction` as a dict, every field present as `model_dump` would give it."""
        labels = self.manifest.labels
        probabilities: list[float] = output.probabilities[row].tolist()
        best = max(range(len(labels)), key=probabilities.__getitem__)
        # Padding columns are dropped; word pieces are summed into their words.
        attention = output.attention[row] if self.manifest.has_attention else None
        prediction = {
            "label": labels[best],
            "score": probabilities[best],
            "probabilities": dict(zip(labels, probabilities, strict=True)),
            "tokens": _tokens(
                text, item.words, None if attention is None else word_attention(item, attention)
            ),
            "truncated": item.truncated,
            "heads": None,
            "pieces": None,
        }
        if pieces:
            prediction["pieces"] = _tokens(
                text,
                piece_spans(text, item),
                None if attention is None else piece_attention(item, attention),
            )
        return prediction


def _tokens(
    text: str, spans: list[tuple[int, int]], weights: npt.NDArray[np.float32] | None
) -> list[dict[str, Any]]:
    """`Token`s as dicts: each span's text and weight (None for a model without attention)."""
    listed: list[float | None] = [None] * len(spans) if weights is None else weights.tolist()
    return [
        {"text": text[start:end], "start": start, "end": end, "attention": weight}
        for (start, end), weight in zip(spans, listed, strict=True)
    ]


def _default_runner(model: LoadedModel, settings: Settings) -> InferenceRunner:
    runner = OnnxModelRunner(model.session)
    if not settings.batching:
        return runner
    return BatchingRunner(
        runner,
        pad_id=model.encoder.pad_id,
        max_batch_size=settings.batch_max_sizes.get(model.manifest.name, settings.batch_max_size),
        max_delay_ms=settings.batch_max_delay_ms,
        max_queue_texts=settings.batch_queue_texts,
    )


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
