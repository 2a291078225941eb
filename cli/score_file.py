"""`attnserve predict --file`: every text of a file scored, in order, written as JSONL or CSV.

Texts go in calls of the scorer's size (several at once to a server); a text the model
refuses (empty, too long) is written with its `error` code instead of a label, and the rest
of its call is scored all the same. Progress is a bar on a terminal, a line per tenth
otherwise, and the counts come at the end.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypeAlias

from attnserve.artifact.records import InputText, TextFormat, decode, read_text, read_texts
from attnserve.artifact.records import text_format as layout_of
from attnserve.cli.errors import TextsRefused

if TYPE_CHECKING:
    from attnserve.cli.scoring import Scorer
    from attnserve.service.schemas import Prediction
    from attnserve_client import Prediction as ClientPrediction

OutputFormat = Literal["jsonl", "csv"]
STDIN = "-"
# A text's prediction, or the code of the error that refused it.
Outcome: TypeAlias = "Prediction | ClientPrediction | str"


@dataclass
class Counts:
    """How a file's scoring went."""

    texts: int
    scored: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> str:
        refused = sum(self.refused.values())
        reasons = ", ".join(f"{code} {n}" for code, n in sorted(self.refused.items()))
        rate = self.scored / self.seconds if self.seconds else 0.0
        return (
            f"scored {self.scored} of {self.texts} texts in {self.seconds:.1f} s "
            f"({rate:.0f} texts/s); {refused} refused" + (f" ({reasons})" if reasons else "")
        )


def read_input(source: str, layout: TextFormat | None, column: str) -> list[InputText]:
    """The texts of `source` (a path, or - for standard input), laid out as `layout` (default:
    by the file's suffix; plain lines for standard input)."""
    if source == STDIN:
        name = Path("<stdin>")
        return read_texts(name, decode(name, sys.stdin.buffer.read()), layout or "lines", column)
    path = Path(source)
    return read_texts(path, read_text(path), layout or layout_of(path), column)


def output_format(out: Path | None, chosen: OutputFormat | None) -> OutputFormat:
    """The format asked for, else CSV for an --out ending in .csv, else JSONL."""
    if chosen is not None:
        return chosen
    return "csv" if out is not None and out.suffix == ".csv" else "jsonl"


def score_file(
    scorer: Scorer,
    texts: list[InputText],
    output: IO[str],
    form: OutputFormat,
    *,
    tokens: bool = False,
    parallel_calls: int = 1,
    progress: Progress | None = None,
) -> Counts:
    """Scores `texts` with `scorer` and writes one record per text, in order, to `output`."""
    counts = Counts(texts=len(texts))
    write = _writer(output, form, scorer.labels, tokens)
    size = scorer.max_texts
    calls = [texts[start : start + size] for start in range(0, len(texts), size)]
    start = time.perf_counter()
    for call, outcomes in zip(calls, _scored(scorer, calls, parallel_calls), strict=True):
        for item, outcome in zip(call, outcomes, strict=True):
            write(_record(item, outcome, tokens))
            if isinstance(outcome, str):
                counts.refused[outcome] += 1
            else:
                counts.scored += 1
        output.flush()
        if progress is not None:
            progress.advance(len(call))
    counts.seconds = time.perf_counter() - start
    return counts


def _scored(
    scorer: Scorer, calls: list[list[InputText]], parallel_calls: int
) -> Iterator[list[Outcome]]:
    def score(call: list[InputText]) -> list[Outcome]:
        return _score_call(scorer, [item.text for item in call])

    if parallel_calls == 1:
        yield from map(score, calls)
        return
    with ThreadPoolExecutor(max_workers=parallel_calls) as pool:
        yield from pool.map(score, calls)


def _score_call(scorer: Scorer, texts: list[str]) -> list[Outcome]:
    """Each text's outcome: the texts refused are set aside with their code, the rest sent again."""
    outcomes: dict[int, Outcome] = {}
    pending = list(range(len(texts)))
    while pending:
        try:
            answer = scorer.score([texts[i] for i in pending])
        except TextsRefused as refused:
            indices = set(refused.indices)
            outcomes.update({pending[k]: refused.code for k in indices})
            pending = [i for k, i in enumerate(pending) if k not in indices]
            continue
        outcomes.update(zip(pending, answer.predictions, strict=True))
        pending = []
    return [outcomes[i] for i in range(len(texts))]


def _record(item: InputText, outcome: Outcome, tokens: bool) -> dict[str, Any]:
    if isinstance(outcome, str):
        return {"line": item.line, "text": item.text, "error": outcome}
    record: dict[str, Any] = {
        "line": item.line,
        "text": item.text,
        "label": outcome.label,
        "score": outcome.score,
        "probabilities": outcome.probabilities,
        "readable": outcome.readable,
    }
    if tokens:
        record["tokens"] = [token.model_dump() for token in outcome.tokens]
    return record


def _writer(
    output: IO[str], form: OutputFormat, labels: list[str], tokens: bool
) -> Callable[[dict[str, Any]], None]:
    """A function writing one record: a JSON line, or a CSV row with a column per label."""
    if form == "jsonl":

        def write_line(record: dict[str, Any]) -> None:
            output.write(json.dumps(record, ensure_ascii=False) + "\n")

        return write_line
    columns = ["line", "text", "label", "score", *(f"probability_{label}" for label in labels)]
    columns += ["readable", *["tokens"] * tokens, "error"]
    table = csv.DictWriter(output, columns, lineterminator="\n")
    table.writeheader()

    def write(record: dict[str, Any]) -> None:
        row = {key: value for key, value in record.items() if key in columns}
        for label, probability in record.get("probabilities", {}).items():
            row[f"probability_{label}"] = probability
        if "tokens" in record:
            row["tokens"] = json.dumps(record["tokens"], ensure_ascii=False)
        table.writerow(row)

    return write


class Progress:
    """A bar on a terminal (standard error); otherwise a line each tenth of the way."""

    def __init__(self, total: int, terminal: bool) -> None:
        self.total = total
        self.done = 0
        self._bar: Any = None
        if terminal:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bar

            self._bar = Bar(
                "scoring",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._task = self._bar.add_task("scoring", total=total)
            self._bar.start()

    def advance(self, texts: int) -> None:
        before, self.done = self.done, self.done + texts
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
        elif self.total and self.done * 10 // self.total > before * 10 // self.total:
            print(f"scored {self.done}/{self.total} texts", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
