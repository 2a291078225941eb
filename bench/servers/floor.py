"""The floor: a bare FastAPI endpoint answering a constant JSON body of a typical answer's size.

No parsing, no model: what the HTTP stack alone costs on this machine. Run by bench/http.py:

    uvicorn --factory bench.servers.floor:create_app
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Response

# The shape and size of attnserve's answer for a ten-token sentence (README's example).
TOKENS = [
    ("The", 0, 3), ("battery", 4, 11), ("life", 12, 16), ("is", 17, 19), ("great", 20, 25),
    ("but", 26, 29), ("the", 30, 33), ("screen", 34, 40), ("is", 41, 43), ("awful", 44, 49),
]  # fmt: skip
ANSWER = json.dumps(
    {
        "model": "bilstm-additive",
        "version": "1",
        "predictions": [
            {
                "label": "positive",
                "score": 0.5125320553779602,
                "probabilities": {"negative": 0.4874679744243622, "positive": 0.5125320553779602},
                "tokens": [
                    {"text": text, "start": start, "end": end, "attention": 0.09999999403953552}
                    for text, start, end in TOKENS
                ],
                "truncated": False,
            }
        ],
    },
    separators=(",", ":"),
).encode()


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/predict")
    async def predict() -> Response:
        return Response(ANSWER, media_type="application/json")

    return app
