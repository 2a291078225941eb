"""What the ASGI scope says about a request, for labels: its route template and a header."""

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


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
