"""API keys, CORS and security headers, on the real app over HTTP."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from attnserve.service.app import JsonLineFormatter, create_app
from attnserve.service.auth import OPEN_PATHS
from attnserve.service.errors import StartupError
from attnserve.service.headers import SECURITY_HEADERS
from tests.conftest import cpu_settings

KEYS = ("first-key-8b1f", "second-key-c0a2")


def _routes(client: TestClient, model: str) -> list[tuple[str, str]]:
    """Every route of the OpenAPI schema (path parameters filled in), the docs, an unknown path."""
    spec = client.get("/openapi.json", headers={"Authorization": f"Bearer {KEYS[0]}"}).json()
    routes = [
        (method.upper(), path.replace("{name}", model).replace("{version}", "1"))
        for path, methods in spec["paths"].items()
        for method in methods
    ]
    return [*routes, ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/no/such/route")]


@pytest.fixture(scope="module")
def keyed(shipped_repository: Path) -> Iterator[TestClient]:
    settings = cpu_settings(shipped_repository, api_keys=",".join(KEYS))
    with TestClient(create_app(settings)) as client:
        yield client


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonLineFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    handler = _Lines()
    logging.getLogger("attnserve").addHandler(handler)
    yield handler.lines
    logging.getLogger("attnserve").removeHandler(handler)


def test_with_keys_only_health_answers_without_a_valid_key(
    keyed: TestClient, shipped_manifest: dict[str, str], log_lines: list[str]
) -> None:
    routes = _routes(keyed, shipped_manifest["name"])
    body = {"text": "great"}

    for method, path in routes:
        missing = keyed.request(method, path, json=body)
        wrong = keyed.request(method, path, json=body, headers={"Authorization": "Bearer nope"})
        not_bearer = keyed.request(method, path, json=body, headers={"Authorization": KEYS[0]})
        if path in OPEN_PATHS:
            assert missing.status_code == wrong.status_code == 200, path
            continue
        assert (missing.status_code, not_bearer.status_code, wrong.status_code) == (401, 401, 403)
        assert missing.headers["www-authenticate"] == "Bearer"
        # the OIP's and KServe v1's shape
        if path.startswith("/v2") or path.endswith((":predict", ":explain")):
            assert wrong.json() == {"error": "The API key is not valid."}
            continue
        if path == "/predict":  # the text-classification shape
            assert wrong.json() == {
                "error": "The API key is not valid.",
                "error_type": "invalid_api_key",
            }
            continue
        assert missing.json()["error"]["code"] == "missing_api_key"
        assert wrong.json()["error"] == {
            "code": "invalid_api_key",
            "message": "The API key is not valid.",
            "details": None,
        }
        for key in KEYS:
            allowed = keyed.request(
                method, path, json=body, headers={"Authorization": f"Bearer {key}"}
            )
            assert allowed.status_code not in (401, 403), (method, path, allowed.status_code)
    assert {"/v1/predict", "/v2/health/ready", "/predict", "/docs"} <= {path for _, path in routes}
    logged = "\n".join(log_lines)
    assert "missing_api_key" in logged and "invalid_api_key" in logged
    assert not any(key in logged for key in (*KEYS, "nope"))


def test_a_file_of_hashed_keys(shipped_repository: Path, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    digest = hashlib.sha256(b"from-the-file").hexdigest()
    keys_file.write_text(f"# ops team\n{digest}  # rotated 2026-01\n\n", "utf-8")
    settings = cpu_settings(shipped_repository, api_keys_file=keys_file)

    with TestClient(create_app(settings)) as client:
        good = client.get("/v1/models", headers={"Authorization": "Bearer from-the-file"})
        bad = client.get("/v1/models", headers={"Authorization": f"Bearer {digest}"})

    assert (good.status_code, bad.status_code) == (200, 403)


def test_a_key_file_without_digests_stops_startup(shipped_repository: Path, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("plain-text-key\n", "utf-8")

    with pytest.raises(StartupError, match=r"line 1: expected a sha256 hex digest"):
        create_app(cpu_settings(shipped_repository, api_keys_file=keys_file))


def test_every_answer_carries_security_headers(client: TestClient) -> None:
    answers = [
        client.post("/v1/predict", json={"text": "great"}),
        client.post("/v1/predict", json={"text": ""}),
        client.get("/no/such/route"),
        client.post("/v1/predict", content=b"x" * (2 * 1024 * 1024)),
    ]

    for response in answers:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, (response.url, name)
        assert (
            response.headers["content-security-policy"]
            == "default-src 'none'; frame-ancestors 'none'"
        )
    assert [r.status_code for r in answers] == [200, 422, 404, 413]


def test_cors_is_off_unless_origins_are_configured(
    client: TestClient, shipped_repository: Path
) -> None:
    origin = "https://app.example"
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    settings = cpu_settings(shipped_repository, cors_origins=[origin], api_keys=KEYS[0])

    default = client.options("/v1/predict", headers=preflight)
    with TestClient(create_app(settings)) as configured:
        allowed = configured.options("/v1/predict", headers=preflight)
        other = configured.options(
            "/v1/predict", headers={**preflight, "Origin": "https://evil.example"}
        )

    assert "access-control-allow-origin" not in default.headers
    assert allowed.status_code == 200  # a preflight carries no credentials: it needs no key
    assert allowed.headers["access-control-allow-origin"] == origin
    assert "access-control-allow-origin" not in other.headers
    # refused in the API's own error shape, not the framework's plain text
    assert other.status_code == 400
    assert other.json()["error"] == {
        "code": "bad_request",
        "message": "Disallowed CORS origin",
        "details": None,
    }


def test_an_api_keys_setting_that_holds_no_key_stops_startup(shipped_repository: Path) -> None:
    for empty in ("", " , ,"):
        with pytest.raises(StartupError, match="ATTNSERVE_API_KEYS is set but holds no key"):
            create_app(cpu_settings(shipped_repository, api_keys=empty))


def test_keys_do_not_show_in_the_settings_repr(shipped_repository: Path) -> None:
    settings = cpu_settings(shipped_repository, api_keys=",".join(KEYS))

    assert not any(key in repr(settings) or key in str(settings.model_dump()) for key in KEYS)
