"""What the commands report in one line and exit 1 for: a runtime failure, not a usage error
(click answers those itself, with exit 2)."""

from __future__ import annotations

from pathlib import Path


class CommandError(Exception):
    """A runtime failure of a command; the message says what to do about it."""


class TextsRefused(Exception):
    """A model refused some texts (by their place in the list sent) and said why: the others
    can be sent again."""

    def __init__(self, code: str, message: str, indices: list[int]) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.indices = indices


def require_repository(path: Path) -> None:
    """Refuses a model repository that is not there, saying how to name one."""
    if not path.is_dir():
        raise CommandError(
            f"no model repository at {path} (the default is ./model_repository): "
            "pass --repository PATH or set ATTNSERVE_MODEL_REPOSITORY"
        )
