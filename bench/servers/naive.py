"""The naive server: the PyTorch model called eagerly per request, as a tutorial's reader would.

FastAPI, a sync endpoint, the trained run's checkpoint under `torch.no_grad()`; no ONNX, no
batching. The run directory comes from $BENCH_RUN_DIR. Benchmark only: it imports torch.

    BENCH_RUN_DIR=runs/bilstm-additive uvicorn --factory bench.servers.naive:create_app
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI
from pydantic import BaseModel
from tokenizers import Tokenizer

from attnserve.models.checkpoint import load_checkpoint


class Body(BaseModel):
    text: str | None = None
    texts: list[str] | None = None


def create_app() -> FastAPI:
    checkpoint = load_checkpoint(Path(os.environ["BENCH_RUN_DIR"]))
    model, labels = checkpoint.model, checkpoint.record.labels
    max_tokens = checkpoint.record.max_tokens
    tokenizer = Tokenizer.from_file(str(checkpoint.tokenizer_path))
    pad: int = tokenizer.token_to_id("[PAD]") or 0
    app = FastAPI()

    @app.post("/v1/predict")
    def predict(body: Body) -> dict[str, Any]:
        texts = [body.text] if body.text is not None else body.texts or []
        encodings = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
        length = max(min(len(e.ids), max_tokens) for e in encodings)
        ids = [e.ids[:max_tokens] + [pad] * (length - len(e.ids[:max_tokens])) for e in encodings]
        mask = [[1] * len(e.ids[:max_tokens]) + [0] * (length - len(e.ids[:max_tokens]))
                for e in encodings]  # fmt: skip
        with torch.no_grad():
            probabilities, attention = model(torch.tensor(ids), torch.tensor(mask))
        predictions = []
        for row, (text, e) in enumerate(zip(texts, encodings, strict=True)):
            best = int(probabilities[row].argmax())
            predictions.append(
                {
                    "label": labels[best],
                    "score": float(probabilities[row][best]),
                    "probabilities": dict(zip(labels, probabilities[row].tolist(), strict=True)),
                    "tokens": [
                        {"text": text[s:t], "start": s, "end": t, "attention": float(w)}
                        for (s, t), w in zip(e.offsets[:max_tokens], attention[row], strict=False)
                    ],
                }
            )
        return {"predictions": predictions}

    return app
