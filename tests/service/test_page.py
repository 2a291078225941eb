"""The page at GET /: served offline by the app, and driven in a real headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import REPO_ROOT, SCREENSHOTS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# An emoji before the tokens: the API's offsets count code points, JavaScript's UTF-16 units.
TEXT = "👍 The battery life is great,  but the screen is awful!"
SCREENSHOT = REPO_ROOT / "build" / "screenshots" / "page.png"


def test_the_page_and_its_files_are_served_with_nothing_from_elsewhere(client: TestClient) -> None:
    page = client.get("/")
    files = {name: client.get(f"/static/{name}") for name in ("page.js", "page.css")}

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert files["page.js"].headers["content-type"].startswith("text/javascript")
    assert files["page.css"].headers["content-type"].startswith("text/css")
    for text in (page.text, *(response.text for response in files.values())):
        assert not re.search(r"https?:|//[a-z]", text), "the page must work offline"
    assert 'src="static/page.js"' in page.text and 'href="static/page.css"' in page.text
    assert client.get("/static/nope.js").status_code == 404


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A context of Debian's Chromium driven by Playwright (never a downloaded browser)."""
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI installs it (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = chromium.new_context(viewport={"width": 1000, "height": 700})
        context.set_default_timeout(10_000)
        yield context
        context.close()
        chromium.close()


def test_the_page_shades_each_token_by_the_apis_attention(
    browser: Any, server_process: str
) -> None:
    page = browser.new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(f"{server_process}/")

    page.wait_for_selector("#model option", state="attached")
    assert page.input_value("#model") == "bilstm-additive"
    page.fill("#text", TEXT)
    page.click("#submit")
    page.wait_for_selector("#highlighted .token")

    expected = httpx.post(
        f"{server_process}/v1/models/bilstm-additive/predict", json={"text": TEXT}
    ).json()["predictions"][0]
    spans = page.eval_on_selector_all(
        "#highlighted .token",
        "spans => spans.map(s => [s.textContent, Number(s.dataset.attention),"
        " getComputedStyle(s).backgroundColor])",
    )
    assert [(text, weight) for text, weight, _ in spans] == [
        (token["text"], token["attention"]) for token in expected["tokens"]
    ]
    # the whole text is shown, in order, and the most attended token is the deepest shade
    assert page.inner_text("#highlighted") == TEXT
    top = max(range(len(spans)), key=lambda i: spans[i][1])
    assert spans[top][2] == "rgb(214, 48, 21)"
    assert page.inner_text("#label") == f"{expected['label']} ({expected['score']:.3f})"
    for label, probability in expected["probabilities"].items():
        row = page.inner_text(f'#probabilities tr[data-label="{label}"]')
        assert row.split() == [label, f"{probability:.3f}"]

    page.hover(f"#highlighted .token >> nth={top}")
    token = expected["tokens"][top]
    assert page.inner_text("#hovered") == f"{token['text']}: attention {token['attention']:.4f}"
    assert failed == []

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    SCREENSHOTS.append(SCREENSHOT)
    page.close()


def test_an_error_shows_the_apis_message(browser: Any, server_process: str) -> None:
    page = browser.new_page()
    page.goto(f"{server_process}/")
    page.wait_for_selector("#model option", state="attached")

    page.fill("#text", "   ")
    page.click("#submit")
    page.wait_for_selector("#status.error")

    assert page.inner_text("#status") == (
        "Text at index 0 is empty or has no tokens: there is nothing to classify."
    )
    assert page.is_hidden("#result")
    page.close()
