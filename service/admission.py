"""Refuses an inference request while its model's queue is full, before its body is read.

A request refused only after its body is parsed and its texts tokenised costs the server
nearly what an answered one costs: under several times the sustainable load, such refusals
take the CPU from the requests being answered. Refused here, a request costs a path match
and a comparison. The body's text count is not known yet, so a request is admitted only
while the queue has room for the most texts a request may carry; one admitted that then
does not fit (others filled the queue meanwhile) is still refused by the batcher.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from attnserve.service.errors import Overloaded, refuse
from attnserve.service.registry import ModelRegistry

# /v1/predict (the default model), /v1/models/{name}/predict, /v2/models/{name}[/versions/{v}]/infer
_INFERENCE_PATH = re.compile(
    r"^/v1/(?:predict|models/(?P<v1>[^/]+)/predict)$"
    r"|^/v2/models/(?P<v2>[^/]+)(?:/versions/[^/]+)?/infer$"
)


class AdmissionControl:
    """Pure ASGI middleware: 503 `overloaded` with Retry-After, without reading the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = _refusal(scope) if scope["type"] == "http" else None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        await refuse(refusal, scope, receive, send, refusal.headers)


def _refusal(scope: Scope) -> Overloaded | None:
    match = _INFERENCE_PATH.match(scope["path"]) if scope["method"] == "POST" else None
    registry: ModelRegistry | None = scope["app"].state.registry
    if match is None or registry is None:
        return None
    # An unknown or unavailable model is not refused here: its route says what is wrong.
    predictor = registry.predictors.get(match["v1"] or match["v2"] or registry.default_model)
    return None if predictor is None else predictor.overloaded()
