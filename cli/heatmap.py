"""Attention shown to a person: the text with each token shaded by its weight.

`terminal_heatmap` gives rich renderables for `attnserve predict`; `html_heatmap` a
standalone HTML file. Both shade a token by its weight relative to the text's largest, with
the same colours as the page at `GET /`, and keep every character of the text between the
tokens as it is.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass

from rich.console import Group
from rich.style import Style
from rich.text import Text

from attnserve.service.schemas import Prediction, PredictResponse, Token

# Shading goes from a pale to a deep tone of one hue; the page's JavaScript uses the same.
_PALE = (255, 236, 179)
_DEEP = (214, 48, 21)
# Tokens under this share of the text's largest weight stay unshaded.
_FAINT = 0.02


def shade(relative: float) -> tuple[int, int, int]:
    """The background colour of a token whose weight is `relative` (0..1) of the largest."""
    relative = min(max(relative, 0.0), 1.0)
    red, green, blue = (round(p + (d - p) * relative) for p, d in zip(_PALE, _DEEP, strict=True))
    return red, green, blue


@dataclass(frozen=True)
class Segment:
    """A piece of the text: a token with its weight relative to the text's largest, or a gap."""

    text: str
    token: Token | None = None
    relative: float | None = None


def segments(text: str, prediction: Prediction) -> Iterator[Segment]:
    """The whole text cut at the tokens' offsets; gaps are what lies between tokens."""
    weights = [token.attention for token in prediction.tokens if token.attention is not None]
    largest = max(weights, default=0.0)
    position = 0
    for token in prediction.tokens:
        if token.start > position:
            yield Segment(text[position : token.start])
        relative = token.attention / largest if token.attention is not None and largest else None
        yield Segment(text[token.start : token.end], token, relative)
        position = token.end
    if position < len(text):
        yield Segment(text[position:])


def summary(prediction: Prediction) -> str:
    """`positive 0.84  (negative 0.16, positive 0.84)`."""
    probabilities = ", ".join(f"{label} {p:.2f}" for label, p in prediction.probabilities.items())
    return f"{prediction.label} {prediction.score:.2f}  ({probabilities})"


def terminal_heatmap(texts: list[str], response: PredictResponse) -> Group:
    """For each text: its label and probabilities, then the text shaded by attention."""
    parts: list[Text] = [Text(f"{response.model} v{response.version}", style="dim")]
    for text, prediction in zip(texts, response.predictions, strict=True):
        parts.append(Text(summary(prediction), style="bold"))
        shaded = Text()
        for segment in segments(text, prediction):
            shaded.append(segment.text, _terminal_style(segment.relative))
        parts.append(shaded)
        if not any(token.attention is not None for token in prediction.tokens):
            parts.append(Text("(this model has no attention)", style="dim"))
        elif prediction.truncated:
            parts.append(Text("(truncated: only the shaded part was read)", style="dim"))
    return Group(*parts)


def _terminal_style(relative: float | None) -> Style | None:
    if relative is None or relative < _FAINT:
        return None
    red, green, blue = shade(relative)
    return Style(
        bgcolor=f"rgb({red},{green},{blue})",
        color="#ffffff" if relative > 0.6 else "#000000",
    )


def html_heatmap(texts: list[str], response: PredictResponse) -> str:
    """A standalone HTML page (no scripts, no external files) of the terminal's view."""
    sections = []
    for text, prediction in zip(texts, response.predictions, strict=True):
        pieces = [_html_piece(segment) for segment in segments(text, prediction)]
        sections.append(
            f'<section>\n<p class="label">{html.escape(summary(prediction))}</p>\n'
            f'<p class="text">{"".join(pieces)}</p>\n</section>'
        )
    title = html.escape(f"attnserve: {response.model} v{response.version}")
    return _PAGE.format(title=title, sections="\n".join(sections))


def _html_piece(segment: Segment) -> str:
    if segment.token is None:
        return html.escape(segment.text)
    weight = "none" if segment.token.attention is None else f"{segment.token.attention:.6f}"
    style = ""
    if segment.relative is not None and segment.relative >= _FAINT:
        red, green, blue = shade(segment.relative)
        foreground = "#fff" if segment.relative > 0.6 else "#000"
        style = f' style="background: rgb({red}, {green}, {blue}); color: {foreground}"'
    return (
        f'<span class="token" data-attention="{weight}" title="attention {weight}"{style}>'
        f"{html.escape(segment.text)}</span>"
    )


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font: 16px/1.6 system-ui, sans-serif; max-width: 50rem; margin: 2rem auto; }}
.label {{ font-weight: bold; margin-bottom: 0.25rem; }}
.text {{ white-space: pre-wrap; margin-top: 0; }}
.token {{ border-radius: 3px; }}
</style>
</head>
<body>
<h1>{title}</h1>
{sections}
</body>
</html>
"""
