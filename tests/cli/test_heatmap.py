"""The heatmaps of `attnserve predict`: every character kept, tokens shaded by their weight."""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import pty
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from rich._palettes import EIGHT_BIT_PALETTE
from rich.console import Console

from attnserve.cli.heatmap import html_heatmap, segments, shade, terminal_heatmap, weights
from attnserve.service.loading import LoadedModel
from attnserve.service.registry import build_predictor
from attnserve.service.schemas import PredictResponse
from attnserve.service.settings import Settings
from attnserve.service.v1_json import predict_response_json
from bench.common import ATTNSERVE
from tests.conftest import REPO_ROOT

TEXTS = ["The battery life is great,  but the screen is awful!", "  Loved it. "]


@pytest.fixture(scope="module")
def response(word_model: LoadedModel) -> PredictResponse:
    """bilstm-additive's real answer for TEXTS (its tokens are the texts' words, each once)."""
    predictor = build_predictor(word_model, Settings(providers="cpu", batching=False))
    predictions = asyncio.run(predictor.predict(TEXTS))
    return PredictResponse.model_validate_json(predict_response_json(predictions))


def test_segments_are_the_whole_text_and_the_tokens_in_order(response: PredictResponse) -> None:
    for text, prediction in zip(TEXTS, response.predictions, strict=True):
        pieces = list(segments(text, prediction))

        assert "".join(piece.text for piece in pieces) == text
        assert [p.token for p in pieces if p.token is not None] == prediction.tokens
        assert all(piece.text.isspace() for piece in pieces if piece.token is None)
        top = max(prediction.tokens, key=lambda t: t.attention or 0.0)
        assert [p.relative for p in pieces if p.token == top] == [1.0]


def test_shading_runs_from_pale_to_deep() -> None:
    assert shade(0.0) == (242, 240, 247)
    assert shade(1.0) == (84, 39, 143)
    assert shade(2.0) == shade(1.0) and shade(-1.0) == shade(0.0)


# An SGR escape and the text it styles; a background is 48;2;R;G;B or 48;5;N.
_STYLED = re.compile(r"\x1b\[([0-9;]*)m([^\x1b]*)")
_BACKGROUND = re.compile(r"(?:^|;)48;(?:2;(\d+);(\d+);(\d+)|5;(\d+))")


def backgrounds(output: str) -> dict[str, tuple[int, int, int]]:
    """Each shaded piece of a terminal's output -> the RGB of its background."""
    found = {}
    for codes, text in _STYLED.findall(output):
        match = _BACKGROUND.search(codes)
        if match and text:
            red, green, blue, index = match.groups()
            rgb = EIGHT_BIT_PALETTE[int(index)] if index else (red, green, blue)
            found[text] = (int(rgb[0]), int(rgb[1]), int(rgb[2]))
    return found


def any_background(output: str) -> bool:
    """Whether any escape in the output sets a background: 40-48 or 100-107."""
    background = re.compile(r"(?:^|;)(?:4[0-8]|10[0-7])(?:;|$)")
    return any(background.search(codes) for codes, _ in _STYLED.findall(output))


def printed(response: PredictResponse, **console: object) -> str:
    """What `attnserve predict` writes for TEXTS to a console of that kind."""
    out = io.StringIO()
    Console(file=out, width=200, highlight=False, **console).print(  # type: ignore[arg-type]
        terminal_heatmap(TEXTS, response)
    )
    return out.getvalue()


@pytest.mark.parametrize("color_system", ["truecolor", "256"])
def test_more_attention_is_a_deeper_shade_in_256_and_true_colours(
    response: PredictResponse, color_system: str
) -> None:
    output = printed(response, color_system=color_system, force_terminal=True)

    shaded = backgrounds(output)
    tokens = sorted(response.predictions[0].tokens, key=lambda t: t.attention or 0.0)
    ranked = [shaded[token.text] for token in tokens if token.text in shaded]
    assert len(ranked) >= 3, output
    # each channel falls (or holds) as the weight grows: the order of shades is the order of
    # weights, whatever the colours' names
    for lighter, deeper in itertools.pairwise(ranked):
        assert all(d <= light for light, d in zip(lighter, deeper, strict=True)), ranked
    deepest = (84, 39, 143) if color_system == "truecolor" else tuple(EIGHT_BIT_PALETTE[54])
    assert ranked[-1] == deepest
    assert re.sub(r"\x1b\[[0-9;]*m", "", output).splitlines()[2] == TEXTS[0]


@pytest.mark.parametrize("kind", ["16 colours", "piped", "NO_COLOR"])
def test_without_an_ordered_ramp_the_weights_are_written_out(
    response: PredictResponse, kind: str
) -> None:
    console = {
        "16 colours": {"color_system": "standard", "force_terminal": True},
        "piped": {},
        "NO_COLOR": {"color_system": "truecolor", "force_terminal": True, "no_color": True},
    }[kind]
    output = printed(response, **console)

    assert not any_background(output)
    lines = re.sub(r"\x1b\[[0-9;]*m", "", output).splitlines()
    first = response.predictions[0]
    assert lines[2] == TEXTS[0]
    assert lines[3] == weights(first)
    listed = [part.rsplit(" ", 1) for part in lines[3].removeprefix("attention: ").split(" · ")]
    by_weight = sorted(first.tokens, key=lambda t: t.attention or 0.0, reverse=True)
    assert [(text, float(weight)) for text, weight in listed] == [
        (token.text, round(token.attention or 0.0, 3)) for token in by_weight
    ]
    if kind == "piped":
        assert "\x1b" not in output


def test_a_16_colour_terminal_gets_the_weights_from_the_command(
    shipped_repository: Path,
) -> None:
    """`attnserve predict` under TERM=xterm (tmux, many SSH sessions), on a real terminal."""
    leader, follower = pty.openpty()
    environment = {**os.environ, "TERM": "xterm", "COLUMNS": "200"}
    environment.pop("COLORTERM", None)
    environment.pop("NO_COLOR", None)
    command = [ATTNSERVE, "predict", "--repository", str(shipped_repository), TEXTS[0]]
    with subprocess.Popen(command, stdout=follower, env=environment, cwd=REPO_ROOT) as process:
        os.close(follower)
        output = b""
        while chunk := _read(leader):
            output += chunk
    os.close(leader)

    assert process.returncode == 0
    text = output.decode()
    assert "\x1b[" in text, "a terminal gets styles"
    assert not any_background(text)
    assert re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines()[3].startswith("attention: ")


def _read(descriptor: int) -> bytes:
    try:
        return os.read(descriptor, 65536)
    except OSError:  # the terminal closed with the process
        return b""


class _Spans(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.spans: list[tuple[str, str]] = []
        self.text: list[str] = []
        self._weight: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "span":
            self._weight = dict(attrs)["data-attention"]

    def handle_endtag(self, tag: str) -> None:
        self._weight = None

    def handle_data(self, data: str) -> None:
        if self._weight is not None:
            self.spans.append((data, self._weight))


def test_the_html_file_has_one_span_per_token_with_its_weight(response: PredictResponse) -> None:
    page = html_heatmap(TEXTS, response)
    parser = _Spans()
    parser.feed(page)

    expected = [
        (token.text, f"{token.attention:.6f}")
        for prediction in response.predictions
        for token in prediction.tokens
    ]
    assert parser.spans == expected
    assert "<script" not in page and "http" not in page
