"""Attention shown to a person: the text with each token shaded by its weight.

`terminal_heatmap` gives a rich renderable for `attnserve predict`; `html_heatmap` a
standalone HTML file. Both shade a token by its weight relative to the text's largest, with
the same colours as the page at `GET /`, and keep every character of the text between the
tokens as it is. Where a terminal cannot show the shades in order (16 colours, whose palette
each terminal sets itself) or shows no colour at all (piped, NO_COLOR), the weights are
written out instead.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderResult
from rich.style import Style
from rich.text import Text

from attnserve.service.schemas import Prediction, PredictResponse, Token

# Shading goes from a pale to a deep tone of one hue, violet, which reads as no sentiment
# (red would read as negative); the page's JavaScript uses the same.
_PALE = (242, 240, 247)
_DEEP = (84, 39, 143)
# The same ramp in xterm's 256 colours, pale to deep, each channel falling step by step (rich's
# own nearest-colour choice passes through grey): a token takes the step of its share.
_EIGHT_BIT_RAMP = (189, 183, 141, 98, 55, 54)
# Tokens under this share of the text's largest weight stay unshaded.
_FAINT = 0.02
# From this share on the shade is dark enough that white text reads better than black.
_WHITE_TEXT_FROM = 0.65


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


def terminal_heatmap(texts: list[str], response: PredictResponse) -> TerminalHeatmap:
    """For each text: its label and probabilities, then the text shaded by attention."""
    return TerminalHeatmap(texts, response)


class TerminalHeatmap:
    """Drawn for the console it is printed on: shaded in 256 or true colours, the text and
    its weights in order of weight anywhere else."""

    def __init__(self, texts: list[str], response: PredictResponse) -> None:
        self.texts = texts
        self.response = response

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # rich names the colour system: "truecolor", "256", "standard" (16), "windows" or None
        shades = console.color_system in {"truecolor", "256"} and not console.no_color
        yield Text(f"{self.response.model} v{self.response.version}", style="dim")
        for text, prediction in zip(self.texts, self.response.predictions, strict=True):
            yield Text(summary(prediction), style="bold")
            if shades:
                yield _shaded(text, prediction, eight_bit=console.color_system == "256")
            else:
                yield Text(text)
            if not any(token.attention is not None for token in prediction.tokens):
                yield Text("(this model has no attention)", style="dim")
            else:
                if not shades:
                    yield Text(weights(prediction))
                if prediction.truncated:
                    read = "the shaded part" if shades else "the tokens listed"
                    yield Text(f"(truncated: only {read} was read)", style="dim")
            note = readability(prediction)
            if note is not None:
                yield Text(f"({note})", style="" if prediction.unreadable else "dim")


def readability(prediction: Prediction) -> str | None:
    """What to say of a text the model could not read whole; None when it knew every word."""
    if prediction.unreadable:
        return "unreadable: the model knew none of its words; the label is a guess"
    if prediction.readable < 1:
        return (
            f"read {prediction.readable:.0%} of its words: the model knew the others only as "
            "unknown"
        )
    return None


def weights(prediction: Prediction) -> str:
    """`attention: great 0.412 · awful 0.220 · ...`: every token, the most attended first (a
    middle dot between them, which no punctuation token can be mistaken for)."""
    ranked = sorted(
        (token for token in prediction.tokens if token.attention is not None),
        key=lambda token: token.attention or 0.0,
        reverse=True,
    )
    return "attention: " + " · ".join(f"{token.text} {token.attention:.3f}" for token in ranked)


def _shaded(text: str, prediction: Prediction, eight_bit: bool) -> Text:
    shaded = Text()
    for segment in segments(text, prediction):
        shaded.append(segment.text, _terminal_style(segment.relative, eight_bit))
    return shaded


def _terminal_style(relative: float | None, eight_bit: bool) -> Style | None:
    if relative is None or relative < _FAINT:
        return None
    if eight_bit:
        step = min(int(relative * len(_EIGHT_BIT_RAMP)), len(_EIGHT_BIT_RAMP) - 1)
        background = f"color({_EIGHT_BIT_RAMP[step]})"
    else:
        background = "rgb({},{},{})".format(*shade(relative))
    return Style(
        bgcolor=background,
        color="#ffffff" if relative >= _WHITE_TEXT_FROM else "#000000",
    )


def html_heatmap(texts: list[str], response: PredictResponse) -> str:
    """A standalone HTML page (no scripts, no external files) of the terminal's view."""
    sections = []
    for text, prediction in zip(texts, response.predictions, strict=True):
        pieces = [_html_piece(segment) for segment in segments(text, prediction)]
        note = readability(prediction)
        sections.append(
            f'<section>\n<p class="label">{html.escape(summary(prediction))}</p>\n'
            f'<p class="text">{"".join(pieces)}</p>\n'
            + ("" if note is None else f'<p class="note">{html.escape(note)}</p>\n')
            + "</section>"
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
        foreground = "#fff" if segment.relative >= _WHITE_TEXT_FROM else "#000"
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
.note {{ color: #555; margin-top: 0; }}
.token {{ border-radius: 3px; }}
</style>
</head>
<body>
<h1>{title}</h1>
{sections}
</body>
</html>
"""
