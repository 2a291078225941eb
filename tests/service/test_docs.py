"""The interactive docs at /docs and /redoc: every file from the app itself, shown in Chromium
under a policy that allows this origin only."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import REPO_ROOT, SCREENSHOTS

REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_load_only_files_the_app_serves(client: TestClient, path: str) -> None:
    page = client.get(path)
    references = re.findall(r'(?:src|href)="([^"]*)"', page.text)

    assert page.status_code == 200
    assert references, page.text
    for reference in references:
        assert reference.startswith("/docs-assets/"), reference
        assert client.get(reference).status_code == 200, reference
    assert not re.search(r"https?:", page.text)
    policy = page.headers["content-security-policy"]
    assert not re.search(r"https?:|\*", policy), policy
    assert "default-src 'self'" in policy and "'unsafe-inline'" not in policy.split("script-src")[1]


@pytest.mark.parametrize(
    ("path", "shown"),
    [("/docs", "#swagger-ui .opblock"), ("/redoc", "redoc [data-section-id]")],
)
def test_the_docs_render_in_chromium_with_nothing_refused(
    browser: Any, server_process: str, path: str, shown: str
) -> None:
    page = browser.new_page()
    failed: list[str] = []
    refused: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on(
        "console", lambda message: refused.append(message.text) if message.type == "error" else None
    )

    page.goto(f"{server_process}{path}")
    page.wait_for_selector(shown)
    if path == "/docs":  # an operation opened: its schema, examples and icons drawn
        page.click("#swagger-ui .opblock-summary >> nth=0")
        page.wait_for_selector("#swagger-ui .opblock-body")

    assert "POST" in page.inner_text("body").upper()
    assert "/v1/predict" in page.inner_text("body")
    # ReDoc's bundle links its maker's logo from their CDN, and hides the image when it does
    # not load: the policy refuses that one request, and nothing else leaves the page
    expected = [REDOC_LOGO] if path == "/redoc" else []
    assert failed == expected
    assert [message for message in refused if REDOC_LOGO not in message] == []
    screenshot = REPO_ROOT / "build" / "screenshots" / f"{path.strip('/')}.png"
    page.screenshot(path=str(screenshot))
    SCREENSHOTS.append(screenshot)
    page.close()
