"""The heatmaps of `attnserve predict`: every character kept, tokens shaded by their weight."""

from __future__ import annotations

import asyncio
from html.parser import HTMLParser

import pytest
from rich.console import Console

from attnserve.cli.heatmap import html_heatmap, segments, shade, terminal_heatmap
from attnserve.service.loading import LoadedModel
from attnserve.service.registry import build_predictor
from attnserve.service.schemas import PredictResponse
from attnserve.service.settings import Settings
from attnserve.service.v1_json import predict_response_json

TEXTS = ["The battery life is great,  but the screen is awful!", "  Loved it. "]


@pytest.fixture(scope="module")
def response(loaded_model: LoadedModel) -> PredictResponse:
    """The shipped model's real answer for TEXTS."""
    predictor = build_predictor(loaded_model, Settings(providers="cpu", batching=False))
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
    assert shade(0.0) == (255, 236, 179)
    assert shade(1.0) == (214, 48, 21)
    assert shade(2.0) == shade(1.0) and shade(-1.0) == shade(0.0)


def test_the_terminal_shows_label_and_the_most_attended_token_deepest(
    response: PredictResponse,
) -> None:
    console = Console(record=True, color_system="truecolor", force_terminal=True, width=200)
    console.print(terminal_heatmap(TEXTS, response))

    plain = console.export_text(clear=False).splitlines()
    first = response.predictions[0]
    assert plain[0] == "bilstm-additive v1"
    assert plain[1].startswith(f"{first.label} {first.score:.2f}  (negative ")
    assert plain[2] == TEXTS[0]
    spans = console.export_html(inline_styles=True).split("<span ")
    deepest = [span for span in spans if 'background-color: #d63015">' in span]
    tops = [max(p.tokens, key=lambda t: t.attention or 0.0).text for p in response.predictions]
    assert [span.split(">")[1].split("<")[0] for span in deepest] == tops


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
