"""The /v1 answer: `Predictions` encoded once as `PredictResponse`'s JSON (and its per-text
objects, which KServe's v1 answer and the text-classification shape reuse).

Built as plain dicts in `schemas.py`'s shape and encoded by pydantic-core, without validating
our own output again (tests check the shape against `PredictResponse`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic_core import to_json

from attnserve.service.predictions import Predictions, Spans


async def encoded_off_the_loop(predictions: Predictions) -> bytes:
    """`predict_response_json`, in a worker thread when the answer is large (heads: megabytes),
    so that other requests go on meanwhile."""
    if predictions.heads is None:
        return predict_response_json(predictions)
    return await asyncio.to_thread(predict_response_json, predictions)


def predict_response_json(predictions: Predictions) -> bytes:
    """The JSON of a `PredictResponse`."""
    return to_json(
        {
            "model": predictions.model,
            "version": predictions.version,
            "predictions": prediction_objects(predictions),
        }
    )


def prediction_objects(predictions: Predictions) -> list[dict[str, Any]]:
    """Each text's `Prediction`, as a dict ready to encode."""
    labels = predictions.labels
    rows = predictions.probabilities.tolist()
    unreadable = predictions.unreadable
    answers = []
    for row, (text, probabilities, label_id) in enumerate(
        zip(predictions.texts, rows, predictions.label_ids.tolist(), strict=True)
    ):
        answers.append(
            {
                "label": labels[label_id],
                "score": probabilities[label_id],
                "probabilities": dict(zip(labels, probabilities, strict=True)),
                "tokens": token_objects(text, predictions.words[row]),
                "truncated": predictions.truncated[row],
                "readable": predictions.readable[row],
                "unreadable": unreadable[row],
                "heads": None if predictions.heads is None else predictions.heads[row].tolist(),
                "pieces": None
                if predictions.pieces is None
                else token_objects(text, predictions.pieces[row]),
            }
        )
    return answers


def token_objects(text: str, spans: Spans) -> list[dict[str, Any]]:
    """`Token`s as dicts: each span's text and weight (None for a model without attention)."""
    weights: list[float | None] = (
        [None] * len(spans.spans) if spans.weights is None else spans.weights.tolist()
    )
    return [
        {"text": text[start:end], "start": start, "end": end, "attention": weight}
        for (start, end), weight in zip(spans.spans, weights, strict=True)
    ]
