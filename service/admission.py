"""Refuses an inference request while its model's queue is full, before its body is read.

A request refused only after its body is parsed and its texts tokenised costs the server
nearly what an answered one costs: under several times the sustainable load, such refusals
take the CPU from the requests being answered. Refused here, a request costs a route match
and a comparison. The body's text count is not known yet, so a request is admitted only
while the queue has room for the most texts a request may carry; one admitted that then
does not fit (others filled the queue meanwhile) is still refused by the batcher.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from attnserve.service.errors import ServiceError
from attnserve.service.registry import ModelRegistry


class Admission:
    """Which inference route a request is for, and whether its model takes it now.

    `inference_routes` are the app's routes that run a model, which a `name` path parameter
    names (the default model's without one)."""

    def __init__(self, inference_routes: Sequence[BaseRoute]) -> None:
        self.inference_routes = list(inference_routes)

    def match(self, scope: Scope) -> tuple[BaseRoute, dict[str, Any]] | None:
        """The inference route `scope` is for and its path parameters, or None."""
        for route in self.inference_routes:
            matched, child_scope = route.matches(scope)
            if matched is Match.FULL:
                return route, child_scope["path_params"]
        return None

    @staticmethod
    def refusal(registry: ModelRegistry, path_params: dict[str, Any]) -> ServiceError | None:
        """503 `overloaded` (with Retry-After) while the model's queue has no room."""
        return registry.refusal(path_params.get("name"))
