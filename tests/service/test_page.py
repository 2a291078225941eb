"""The page at GET /: served offline by the app, and driven in a real headless Chromium."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.conftest import REPO_ROOT, SCREENSHOTS

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


def test_the_page_shades_each_token_by_the_apis_attention(
    browser: Any, server_process: str
) -> None:
    page = browser.new_page()
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(f"{server_process}/")

    page.wait_for_selector("#model option", state="attached")
    default = httpx.get(f"{server_process}/v1/models").json()["default_model"]
    assert page.input_value("#model") == default
    page.fill("#text", TEXT)
    page.click("#submit")
    page.wait_for_selector("#highlighted .token")

    expected = httpx.post(
        f"{server_process}/v1/models/{default}/predict", json={"text": TEXT}
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
    assert spans[top][2] == "rgb(84, 39, 143)"
    assert page.inner_text("#label") == f"{expected['label']} ({expected['score']:.3f})"
    # one row a label, in the order of the model's labels (GET /v1/models), none assumed
    labels = httpx.get(f"{server_process}/v1/models/{default}").json()["labels"]
    rows = page.eval_on_selector_all("#probabilities tr", "rows => rows.map(r => r.dataset.label)")
    assert rows == labels
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
    page = _opened(browser, server_process)

    page.fill("#text", "   ")
    page.click("#submit")
    page.wait_for_selector("#status.error")

    assert page.inner_text("#status") == (
        "Text at index 0 is empty or has no tokens: there is nothing to classify."
    )
    assert page.is_hidden("#result")
    page.close()


def test_the_note_says_when_the_model_could_not_read_the_text(
    browser: Any, server_process: str
) -> None:
    page = _opened(browser, server_process)
    notes = {}
    for text in ("😀 🙃", "great 😀", "great"):
        page.fill("#text", text)
        page.click("#submit")
        page.wait_for_function(
            "text => document.getElementById('highlighted').textContent === text", arg=text
        )
        notes[text] = page.inner_text("#note")

    assert (
        "unreadable: the model knew none of these words, so the label is a guess" in notes["😀 🙃"]
    )
    assert "read 50% of the words: the model knew the others only as unknown" in notes["great 😀"]
    assert "unreadable" not in notes["great"] and "read " not in notes["great"]
    page.close()


def test_the_picker_names_each_model_once_with_its_accuracy(
    browser: Any, server_process: str
) -> None:
    page = _opened(browser, server_process)

    options = page.eval_on_selector_all(
        "#model option", "options => options.map(o => [o.value, o.textContent])"
    )
    served = httpx.get(f"{server_process}/v1/models").json()["models"]
    assert options == [
        [
            model["name"],
            f"{model['name']} v{model['version']} · accuracy "
            f"{100 * model['metrics']['test_accuracy']:.1f}%",
        ]
        for model in served
    ]
    assert all(text.count(name) == 1 for name, text in options)
    page.close()


def test_a_legend_and_a_note_say_how_far_to_trust_the_shading(
    browser: Any, server_process: str
) -> None:
    """The legend's ramp runs pale to deep; the note gives the picked model's figures from
    GET /v1/models: accuracy, and attention's faithfulness against random words (AOPC)."""
    page = _opened(browser, server_process)
    notes = {}
    for name in ("bilstm-additive", "lstm", "minilm-attention"):
        page.select_option("#model", name)
        page.fill("#text", TEXT)
        page.press("#text", "Control+Enter")  # submits, as the button does
        page.wait_for_function(
            "name => document.getElementById('note').textContent.startsWith(name + ' v')", arg=name
        )
        notes[name] = page.inner_text("#model-note")

    ramp = page.eval_on_selector("#legend .ramp", "r => getComputedStyle(r).backgroundImage")
    assert ramp == "linear-gradient(to right, rgb(242, 240, 247), rgb(84, 39, 143))"
    assert page.inner_text("#legend").split()[:3] == ["less", "more", "attention"]
    assert page.is_visible("#legend")

    for name in ("bilstm-additive", "minilm-attention"):
        info = httpx.get(f"{server_process}/v1/models/{name}").json()
        aopc = info["faithfulness"]["aopc"]
        accuracy = f"{100 * info['metrics']['test_accuracy']:.1f}%"
        ratio = aopc["attention"] / aopc["random"]
        for figure in (
            accuracy,
            f"{aopc['attention']:.3f}",
            f"{aopc['random']:.3f}",
            f"{ratio:.1f}\u00d7 as much as deleting random words",
        ):
            assert figure in notes[name], notes[name]
    assert notes["lstm"].endswith("It has no attention: nothing is shaded.")
    page.close()


def _opened(browser: Any, server_process: str) -> Any:
    """A new page on the server's /, once its model picker is filled."""
    page = browser.new_page()
    page.goto(f"{server_process}/")
    page.wait_for_selector("#model option", state="attached")
    return page
