"""Settings: ATTNSERVE_* variables, documented fields, ./model_repository by default."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from attnserve.service.settings import Settings


def test_defaults_serve_the_working_directorys_repository_locally() -> None:
    settings = Settings()

    # relative, so an installed package finds no repository inside site-packages
    assert settings.model_repository == Path("model_repository")
    assert (settings.host, settings.port, settings.providers) == ("127.0.0.1", 8000, "auto")
    assert (settings.max_texts_per_request, settings.max_text_chars) == (64, 5000)
    assert settings.max_body_bytes == 1024 * 1024


def test_every_field_is_documented() -> None:
    undocumented = [name for name, field in Settings.model_fields.items() if not field.description]

    assert undocumented == []


def test_values_come_from_attnserve_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTNSERVE_MODEL_REPOSITORY", "/srv/models")
    monkeypatch.setenv("ATTNSERVE_PROVIDERS", "cpu")
    monkeypatch.setenv("ATTNSERVE_MAX_TEXTS_PER_REQUEST", "8")

    settings = Settings()

    assert settings.model_repository == Path("/srv/models")
    assert settings.providers == "cpu"
    assert settings.max_texts_per_request == 8


@pytest.mark.parametrize(("name", "value"), [("PROVIDERS", "gpu"), ("MAX_TEXT_CHARS", "0")])
def test_an_invalid_value_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"ATTNSERVE_{name}", value)

    with pytest.raises(ValidationError, match=name.lower()):
        Settings()
