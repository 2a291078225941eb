"""Typed client for attnserve: sentiment predictions with per-token attention.

    from attnserve_client import Client

    with Client("http://127.0.0.1:8000") as client:
        [prediction] = client.predict(["The battery life is great"])
        prediction.label, prediction.score, prediction.tokens[0].attention

`predict` takes one text or any number (sent in as many requests as the server's limit asks)
and `detail="pieces"` or `"heads"`; `models()` is what the server serves, default included.
`AsyncClient` is the same with `await`. Both retry 503 answers (honouring Retry-After) and
refused connections with exponential backoff, and time out (10 s by default).
"""

from attnserve_client.client import AsyncClient, Client
from attnserve_client.errors import (
    APIError,
    AttnserveError,
    ServiceUnavailable,
    Timeout,
    TransportError,
)
from attnserve_client.models import (
    ModelInfo,
    ModelList,
    Prediction,
    PredictResponse,
    Token,
    UnavailableModel,
)
from attnserve_client.retry import RetryPolicy

__all__ = [
    "APIError",
    "AsyncClient",
    "AttnserveError",
    "Client",
    "ModelInfo",
    "ModelList",
    "PredictResponse",
    "Prediction",
    "RetryPolicy",
    "ServiceUnavailable",
    "Timeout",
    "Token",
    "TransportError",
    "UnavailableModel",
]
