"""Data files read as line-numbered records: plain lines, CSV/TSV rows under a header, JSONL
objects. Training's labelled sentences (data.py) and the texts `attnserve predict --file`
scores are both read through here, so both name a bad line the same way.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

# How a file of texts is laid out: one text a line, a table with a header, or JSON lines.
TextFormat = Literal["lines", "csv", "tsv", "jsonl"]

# A 1-based line number and what was found there, or why the line is malformed.
Record = tuple[int, dict[str, Any] | str]


class DataFormatError(ValueError):
    """A data file that cannot be read, naming the file and line."""

    def __init__(self, path: Path, line_number: int | None, reason: str) -> None:
        where = f"{path}:{line_number}" if line_number is not None else str(path)
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line_number = line_number
        self.reason = reason


@dataclass(frozen=True)
class InputText:
    """A text to score and the line of its file it starts on."""

    line: int
    text: str


def read_text(path: Path) -> str:
    """The file's content as UTF-8 (a byte-order mark dropped)."""
    return decode(path, path.read_bytes())


def decode(path: Path, data: bytes) -> str:
    """`data` as UTF-8 (a byte-order mark dropped); `path` names it in the error."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line_number = data.count(b"\n", 0, error.start) + 1
        raise DataFormatError(path, line_number, "not valid UTF-8") from error


def text_format(path: Path) -> TextFormat:
    """The layout its suffix says: .csv, .tsv, .jsonl, else one text a line."""
    suffix = path.suffix.lstrip(".")
    return suffix if suffix in ("csv", "tsv", "jsonl") else "lines"  # type: ignore[return-value]


def lines(content: str) -> Iterator[tuple[int, str]]:
    """The non-empty lines and their numbers; "\\r\\n" ends a line as "\\n" does."""
    # Only "\n" ends a line: str.splitlines() would also break on U+0085, U+2028 and others
    # that occur inside sentences.
    for line_number, line in enumerate(content.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line:
            yield line_number, line


def json_records(content: str, keys: Sequence[str]) -> Iterator[Record]:
    """Each line's JSON object, which must have `keys`."""
    for line_number, line in lines(content):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            yield line_number, f"invalid JSON ({error.msg})"
            continue
        if not isinstance(record, dict) or any(key not in record for key in keys):
            yield line_number, "expected an object with " + " and ".join(f'"{k}"' for k in keys)
        else:
            yield line_number, record


def table_records(
    path: Path, content: str, delimiter: str, columns: Sequence[str]
) -> Iterator[Record]:
    """Each row under the header as {column: value}; a header without `columns` is an error."""
    # newline="" lets the csv module see line endings itself, as for a file opened that way.
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    last_line = 0
    for row in reader:
        # line_num counts physical lines read so far; a quoted field may span several.
        row_start, last_line = last_line + 1, reader.line_num
        if not row:
            continue
        if header is None:
            header = row
            missing = [name for name in columns if name not in header]
            if missing:
                raise DataFormatError(
                    path, row_start, f"header lacks column(s) {missing} (it has {header})"
                )
            continue
        if len(row) != len(header):
            yield row_start, f"expected {len(header)} fields, found {len(row)}"
            continue
        yield row_start, dict(zip(header, row, strict=True))


def read_texts(path: Path, content: str, layout: TextFormat, column: str) -> list[InputText]:
    """The texts of a file (`path` names it in errors) laid out as `layout`, from `column`
    of a table or the key `column` of JSON lines; a malformed line is an error."""
    if layout == "lines":
        return [InputText(line_number, line) for line_number, line in lines(content)]
    if layout == "jsonl":
        records = json_records(content, [column])
    else:
        records = table_records(path, content, "\t" if layout == "tsv" else ",", [column])
    texts = []
    for line_number, record in records:
        if isinstance(record, str):
            raise DataFormatError(path, line_number, record)
        if not isinstance(record[column], str):
            raise DataFormatError(path, line_number, f'"{column}" must be a string')
        texts.append(InputText(line_number, record[column]))
    return texts
