"""The plain server: ONNX Runtime called once per request in a sync FastAPI endpoint.

What most developers would write around the same model.onnx and tokenizer.json; no batching.
The model directory comes from $BENCH_MODEL_DIR.

    BENCH_MODEL_DIR=model_repository/bilstm-additive/1 \
        uvicorn --factory bench.servers.plain:create_app
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from pydantic import BaseModel
from tokenizers import Tokenizer


class Body(BaseModel):
    text: str | None = None
    texts: list[str] | None = None


def create_app() -> FastAPI:
    model_dir = Path(os.environ["BENCH_MODEL_DIR"])
    manifest = json.loads((model_dir / "manifest.json").read_text())
    labels: list[str] = manifest["labels"]
    max_tokens: int = manifest["max_tokens"]
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    session = ort.InferenceSession(
        str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    app = FastAPI()

    @app.post("/v1/predict")
    def predict(body: Body) -> dict[str, Any]:
        texts = [body.text] if body.text is not None else body.texts or []
        # [CLS]/[SEP] for a word-piece model; a word-level tokenizer adds none.
        encodings = tokenizer.encode_batch(texts)
        length = max(min(len(e.ids), max_tokens) for e in encodings)
        ids = np.zeros((len(texts), length), dtype=np.int64)
        mask = np.zeros((len(texts), length), dtype=np.int64)
        for row, e in enumerate(encodings):
            n = min(len(e.ids), max_tokens)
            ids[row, :n] = e.ids[:n]
            mask[row, :n] = 1
        probabilities, attention = session.run(
            ["probabilities", "attention"], {"input_ids": ids, "attention_mask": mask}
        )
        predictions = []
        for row, (text, e) in enumerate(zip(texts, encodings, strict=True)):
            best = int(np.argmax(probabilities[row]))
            predictions.append(
                {
                    "label": labels[best],
                    "score": float(probabilities[row][best]),
                    "probabilities": dict(zip(labels, map(float, probabilities[row]), strict=True)),
                    "tokens": [
                        {"text": text[s:t], "start": s, "end": t, "attention": float(w)}
                        for (s, t), w in zip(e.offsets[:max_tokens], attention[row], strict=False)
                    ],
                }
            )
        return {"predictions": predictions}

    return app
