"""Refuses an inference request while its model's queue is full, before its body is read.

A request refused only after its body is parsed and its texts tokenised costs the server
nearly what an answered one costs: under several times the sustainable load, such refusals
take the CPU from the requests being answered. Refused here, a request costs a route match
and a comparison. The body's text count is not known yet, so a request is admitted only
while the queue has room for the most texts a request may carry; one admitted that then
does not fit (others filled the queue meanwhile) is still refused by the batcher.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from attnserve.service.error_responses import ErrorResponder
from attnserve.service.registry import ModelRegistry


class AdmissionControl:
    """Pure ASGI middleware: 503 `overloaded` with Retry-After, without reading the body.

    `inference_routes` are the app's routes that run a model, which a `name` path parameter
    names (the default model's without one); `registry` gives the registry once loaded."""

    def __init__(
        self,
        app: ASGIApp,
        inference_routes: Sequence[BaseRoute],
        registry: Callable[[], ModelRegistry | None],
        responder: ErrorResponder,
    ) -> None:
        self.app = app
        self.inference_routes = list(inference_routes)
        self.registry = registry
        self.responder = responder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        registry = self.registry() if scope["type"] == "http" else None
        refusal = None
        if registry is not None:
            for route in self.inference_routes:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    refusal = registry.refusal(child_scope["path_params"].get("name"))
                    break
        if refusal is None:
            await self.app(scope, receive, send)
            return
        await self.responder.refuse(refusal, scope, receive, send, refusal.headers)
