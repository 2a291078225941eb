"""Typed client for attnserve: sentiment predictions with per-token attention.

    from attnserve_client import Client

    with Client("http://127.0.0.1:8000") as client:
        [prediction] = client.predict(["The battery life is great"])
        prediction.label, prediction.score, prediction.tokens[0].attention

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
from attnserve_client.models import ModelInfo, Prediction, PredictResponse, Token
from attnserve_client.retry import RetryPolicy

__all__ = [
    "APIError",
    "AsyncClient",
    "AttnserveError",
    "Client",
    "ModelInfo",
    "PredictResponse",
    "Prediction",
    "RetryPolicy",
    "ServiceUnavailable",
    "Timeout",
    "Token",
    "TransportError",
]
