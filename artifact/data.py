"""Labelled sentences from disk, their label names, and the seeded, leak-free split.

A label is a name as the data gives it (a string, or an integer read as its digits); a data
set's labels are every name found, in a fixed order (`label_names`) that gives each its id.
Torch-free: `attnserve evaluate` imports it to rebuild a model's exact test set.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from attnserve.artifact.records import (
    DataFormatError,
    Record,
    json_records,
    lines,
    read_text,
    table_records,
)

# What the UCI sentiment files' 0 and 1 mean (their readme.txt).
UCI_LABELS = {"0": "negative", "1": "positive"}
SUPPORTED_SUFFIXES = (".txt", ".tsv", ".csv", ".jsonl")
_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class Example:
    """One labelled sentence: its label's name, and the stem of the file it came from."""

    text: str
    label: str
    source: str


@dataclass(frozen=True)
class Columns:
    """The columns of a CSV/TSV header (or the keys of a JSONL object) holding text and label."""

    text: str = "text"
    label: str = "label"


DEFAULT_COLUMNS = Columns()


class LabelError(ValueError):
    """Labels that cannot make a classifier: fewer than two, or not the ones asked for."""


@dataclass(frozen=True)
class SkippedLine:
    """A malformed line left out because the caller asked to skip bad lines."""

    path: Path
    line_number: int
    reason: str


@dataclass
class LoadedData:
    """The examples read, in file order, and the lines skipped on the way."""

    examples: list[Example] = field(default_factory=list)
    skipped: list[SkippedLine] = field(default_factory=list)


@dataclass(frozen=True)
class DataSplit:
    """Disjoint train/validation/test examples: no text appears in two of them."""

    train: list[Example]
    validation: list[Example]
    test: list[Example]


def load_examples(
    path: Path, *, columns: Columns = DEFAULT_COLUMNS, skip_bad: bool = False
) -> LoadedData:
    """Reads one file: .txt UCI `sentence<TAB>0|1` (negative, positive), .tsv/.csv with a
    header naming `columns`, or .jsonl objects with `columns` as keys."""
    if path.suffix not in SUPPORTED_SUFFIXES:
        supported = ", ".join(SUPPORTED_SUFFIXES)
        raise DataFormatError(path, None, f"unsupported suffix {path.suffix!r} ({supported})")
    content = read_text(path)
    loaded = LoadedData()
    for line_number, parsed in _parse(path, content, columns):
        if isinstance(parsed, Example):
            loaded.examples.append(parsed)
        elif skip_bad:
            loaded.skipped.append(SkippedLine(path, line_number, parsed))
        else:
            raise DataFormatError(path, line_number, parsed)
    if not loaded.examples:
        raise DataFormatError(path, None, "no examples")
    return loaded


def load_sources(
    paths: Sequence[Path], *, columns: Columns = DEFAULT_COLUMNS, skip_bad: bool = False
) -> LoadedData:
    """Reads several files and concatenates their examples and skipped lines, in order."""
    if not paths:
        raise ValueError("no data files given")
    loaded = LoadedData()
    for path in paths:
        one = load_examples(path, columns=columns, skip_bad=skip_bad)
        loaded.examples.extend(one.examples)
        loaded.skipped.extend(one.skipped)
    return loaded


def label_names(examples: Sequence[Example], order: Sequence[str] | None = None) -> list[str]:
    """The labels of `examples`, in `order` when given (each label found, once), else integers
    in numeric order before other names in alphabetical order; a label's id is its position."""
    found = {example.label for example in examples}
    if order is not None:
        if len(set(order)) != len(order):
            raise LabelError(f"the label order names a label twice: {', '.join(order)}")
        if set(order) != found:
            raise LabelError(
                f"the label order ({', '.join(order)}) is not the labels in the data "
                f"({', '.join(sorted(found, key=_label_key))})"
            )
        names = list(order)
    else:
        names = sorted(found, key=_label_key)
    if len(names) < 2:
        raise LabelError(f"a classifier needs at least two labels; the data has only {names}")
    return names


def label_ids(examples: Sequence[Example], labels: Sequence[str]) -> list[int]:
    """Each example's label as its position in `labels`."""
    ids = {name: index for index, name in enumerate(labels)}
    return [ids[example.label] for example in examples]


def _label_key(name: str) -> tuple[int, int, str]:
    return (0, int(name), "") if _INTEGER.fullmatch(name) else (1, 0, name)


def split_examples(
    examples: Sequence[Example],
    *,
    labels: Sequence[str],
    seed: int,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> DataSplit:
    """Seeded split, stratified by (source, label), with identical texts kept on one side.

    `labels` are the data's label names in id order (`label_names`); a stratum's shuffle is
    seeded by its label's id, so naming the labels differently leaves the split as it is."""
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1: {fractions}")
    # A group is every index sharing one text; its stratum is its first occurrence's.
    groups: dict[str, list[int]] = {}
    for index, example in enumerate(examples):
        groups.setdefault(example.text, []).append(index)
    strata: dict[tuple[str, str], list[list[int]]] = {}
    for indices in groups.values():
        first = examples[indices[0]]
        strata.setdefault((first.source, first.label), []).append(indices)

    sides: list[list[int]] = [[], [], []]
    label_ids = {name: index for index, name in enumerate(labels)}
    for (source, label), stratum_groups in strata.items():
        # One generator per stratum, so adding a source does not reshuffle the others.
        random.Random(f"{seed}/{source}/{label_ids[label]}").shuffle(stratum_groups)
        total = sum(len(indices) for indices in stratum_groups)
        targets = (round(fractions[0] * total), round(fractions[1] * total))
        filled = [0, 0, 0]
        for indices in stratum_groups:
            side = 0 if filled[0] < targets[0] else 1 if filled[1] < targets[1] else 2
            sides[side].extend(indices)
            filled[side] += len(indices)
    train, validation, test = ([examples[i] for i in sorted(side)] for side in sides)
    return DataSplit(train=train, validation=validation, test=test)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# A 1-based line number and the example found there, or why the line is malformed.
Parsed = tuple[int, Example | str]


def _parse(path: Path, content: str, columns: Columns) -> Iterator[Parsed]:
    if path.suffix == ".txt":
        return _parse_uci(path.stem, content)
    keys = [columns.text, columns.label]
    if path.suffix == ".jsonl":
        records = json_records(content, keys)
    else:
        records = table_records(path, content, "\t" if path.suffix == ".tsv" else ",", keys)
    return _labelled(path.stem, records, columns)


def _parse_uci(source: str, content: str) -> Iterator[Parsed]:
    for line_number, line in lines(content):
        sentence, tab, label = line.rpartition("\t")
        label = label.strip()
        if not tab:
            yield line_number, "no tab between sentence and label"
        elif label not in UCI_LABELS:
            yield line_number, f"label must be 0 or 1, got {label!r}"
        else:
            yield line_number, _example(sentence, UCI_LABELS[label], source)


def _labelled(source: str, records: Iterator[Record], columns: Columns) -> Iterator[Parsed]:
    text_key, label_key = columns.text, columns.label
    for line_number, record in records:
        if isinstance(record, str):
            yield line_number, record
            continue
        text, label = record[text_key], record[label_key]
        if not isinstance(text, str):
            yield line_number, f'"{text_key}" must be a string'
        elif not isinstance(label, str | int) or isinstance(label, bool):
            yield line_number, f'"{label_key}" must be a string or an integer, got {label!r}'
        else:
            yield line_number, _example(text, str(label).strip(), source)


def _example(text: str, label: str, source: str) -> Example | str:
    if not label:
        return "empty label"
    if not text.strip():
        return "empty sentence"
    return Example(text=text, label=label, source=source)


def first_per_source(examples: list[Example], limit: int | None) -> list[Example]:
    """The first `limit` examples of each source, in order (all of them when limit is None)."""
    if limit is None:
        return examples
    taken: Counter[str] = Counter()
    kept = []
    for example in examples:
        if taken[example.source] < limit:
            kept.append(example)
            taken[example.source] += 1
    return kept
