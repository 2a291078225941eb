"""The label a request's route gets in metrics and logs: its template, never its raw path."""

from __future__ import annotations

from starlette.types import Scope

UNMATCHED = "unmatched"


def route_template(scope: Scope) -> str:
    """The matched route's path template (`/v1/models/{name}/predict`), never the raw path.

    Raw paths would give metrics a label value per URL anyone cares to ask for. A request
    answered before routing (no route for its path, or a body over the limit) is `unmatched`.
    """
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED
