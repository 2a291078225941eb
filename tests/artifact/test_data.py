"""Loading labelled sentences (edge cases and the real UCI files) and the seeded split."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from attnserve.artifact.data import (
    Columns,
    Example,
    LabelError,
    SkippedLine,
    label_names,
    load_examples,
    load_sources,
    sha256_file,
    split_examples,
)
from attnserve.artifact.records import DataFormatError

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "sentiment-labelled-sentences"
REAL_FILES = [DATA_DIR / "amazon_cells_labelled.txt", DATA_DIR / "yelp_labelled.txt"]
LABELS = ["negative", "positive"]


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8"))
    return path


def test_unicode_line_separators_stay_inside_the_sentence(tmp_path: Path) -> None:
    content = "Great\u0085phone\u2028really.\t1\nBad.\t0\n"
    assert len(content.splitlines()) == 4  # what a naive loader would see
    path = write(tmp_path, "odd.txt", content)
    examples = load_examples(path).examples
    assert examples == [
        Example("Great\u0085phone\u2028really.", "positive", "odd"),
        Example("Bad.", "negative", "odd"),
    ]


def test_crlf_and_blank_lines_and_no_final_newline(tmp_path: Path) -> None:
    path = write(tmp_path, "crlf.txt", "Good.\t1\r\n\r\n\nBad.\t0\r\nFine.\t1")
    assert [(e.text, e.label) for e in load_examples(path).examples] == [
        ("Good.", "positive"),
        ("Bad.", "negative"),
        ("Fine.", "positive"),
    ]


def test_tab_inside_sentence_splits_at_the_last_tab(tmp_path: Path) -> None:
    path = write(tmp_path, "tabs.txt", "left\tright\t0\nlabel with spaces\t 1 \n")
    examples = load_examples(path).examples
    assert [(e.text, e.label) for e in examples] == [
        ("left\tright", "negative"),
        ("label with spaces", "positive"),
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("no tab here", "no tab between sentence and label"),
        ("sentence\t2", "label must be 0 or 1, got '2'"),
        ("sentence\tpositive", "label must be 0 or 1, got 'positive'"),
        ("sentence\t", "label must be 0 or 1, got ''"),
        ("  \t1", "empty sentence"),
    ],
)
def test_malformed_line_names_file_line_and_reason(tmp_path: Path, line: str, reason: str) -> None:
    path = write(tmp_path, "bad.txt", f"Good.\t1\n\n{line}\nBad.\t0\n")
    with pytest.raises(DataFormatError) as caught:
        load_examples(path)
    assert str(caught.value) == f"{path}:3: {reason}"
    assert (caught.value.path, caught.value.line_number, caught.value.reason) == (path, 3, reason)


def test_skip_bad_records_each_skipped_line(tmp_path: Path) -> None:
    path = write(tmp_path, "mixed.txt", "Good.\t1\nno tab\nBad.\t0\nWorse.\tx\n")
    loaded = load_examples(path, skip_bad=True)
    assert [e.text for e in loaded.examples] == ["Good.", "Bad."]
    assert loaded.skipped == [
        SkippedLine(path, 2, "no tab between sentence and label"),
        SkippedLine(path, 4, "label must be 0 or 1, got 'x'"),
    ]


@pytest.mark.parametrize("content", ["", "\n\n\r\n"])
def test_file_without_examples_is_an_error(tmp_path: Path, content: str) -> None:
    path = write(tmp_path, "empty.txt", content)
    with pytest.raises(DataFormatError, match=r"empty\.txt: no examples$"):
        load_examples(path)


def test_file_with_only_bad_lines_is_an_error_even_when_skipping(tmp_path: Path) -> None:
    path = write(tmp_path, "allbad.txt", "no tab\n")
    with pytest.raises(DataFormatError, match="no examples"):
        load_examples(path, skip_bad=True)


def test_unsupported_suffix_and_invalid_utf8(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"unsupported suffix '\.xlsx'"):
        load_examples(tmp_path / "data.xlsx")
    path = tmp_path / "latin1.txt"
    path.write_bytes("Good.\t1\nCaf\xe9.\t1\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"latin1\.txt:2: not valid UTF-8"):
        load_examples(path)


def test_csv_with_quotes_commas_and_newlines_in_text(tmp_path: Path) -> None:
    content = 'id,text,label\r\n1,"Good, really",1\r\n\r\n2,"two\nlines\u2028here",0\r\n'
    examples = load_examples(write(tmp_path, "reviews.csv", content)).examples
    assert examples == [
        Example("Good, really", "1", "reviews"),
        Example("two\nlines\u2028here", "0", "reviews"),
    ]


def test_csv_bad_rows_name_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, "r.csv", 'text,label\n"multi\nline",1\nunquoted, comma,1\n')
    with pytest.raises(DataFormatError) as caught:
        load_examples(path)
    assert str(caught.value) == f"{path}:4: expected 2 fields, found 3"
    loaded = load_examples(
        write(tmp_path, "s.csv", "text,label\nok,1\nmissing label\n"), skip_bad=True
    )
    assert loaded.skipped == [SkippedLine(tmp_path / "s.csv", 3, "expected 2 fields, found 1")]


def test_table_header_must_name_text_and_label(tmp_path: Path) -> None:
    path = write(tmp_path, "h.tsv", "sentence\tlabel\nGood.\t1\n")
    with pytest.raises(DataFormatError) as caught:
        load_examples(path, skip_bad=True)
    assert str(caught.value) == (
        f"{path}:1: header lacks column(s) ['text'] (it has ['sentence', 'label'])"
    )


def test_columns_name_the_text_and_label_of_a_table_or_jsonl(tmp_path: Path) -> None:
    columns = Columns(text="review", label="sentiment")
    table = write(tmp_path, "t.csv", "id,review,sentiment\n1,Fine enough,neutral\n2,Awful,neg\n")
    lines = write(tmp_path, "t.jsonl", '{"review": "Great", "sentiment": "pos", "id": 3}\n')

    assert load_examples(table, columns=columns).examples == [
        Example("Fine enough", "neutral", "t"),
        Example("Awful", "neg", "t"),
    ]
    assert load_examples(lines, columns=columns).examples == [Example("Great", "pos", "t")]
    with pytest.raises(DataFormatError, match=r"t\.csv:1: header lacks column\(s\) \['text'\]"):
        load_examples(table, columns=Columns(label="sentiment"))
    with pytest.raises(DataFormatError, match='expected an object with "text" and "sentiment"'):
        load_examples(lines, columns=Columns(label="sentiment"))


def test_tsv(tmp_path: Path) -> None:
    path = write(tmp_path, "r.tsv", "label\ttext\n0\tNot good.\n 1 \tGood.\n")
    assert load_examples(path).examples == [
        Example("Not good.", "0", "r"),
        Example("Good.", "1", "r"),
    ]


def test_jsonl(tmp_path: Path) -> None:
    rows = [
        {"text": "Good\u2028one.", "label": 1},
        {"text": "Bad.", "label": 0, "id": 7},
        {"text": "So so.", "label": " neutral "},
    ]
    content = "\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n\n"
    assert load_examples(write(tmp_path, "r.jsonl", content)).examples == [
        Example("Good\u2028one.", "1", "r"),
        Example("Bad.", "0", "r"),
        Example("So so.", "neutral", "r"),
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"text": "x", "label": true}', '"label" must be a string or an integer, got True'),
        ('{"text": "x", "label": 1.5}', '"label" must be a string or an integer, got 1.5'),
        ('{"text": "x", "label": " "}', "empty label"),
        ('{"text": 5, "label": 1}', '"text" must be a string'),
        ('{"label": 1}', 'expected an object with "text" and "label"'),
        ("[1, 2]", 'expected an object with "text" and "label"'),
        ("{not json", "invalid JSON (Expecting property name enclosed in double quotes)"),
    ],
)
def test_jsonl_malformed(tmp_path: Path, line: str, reason: str) -> None:
    path = write(tmp_path, "r.jsonl", '{"text": "ok", "label": 1}\n' + line + "\n")
    with pytest.raises(DataFormatError) as caught:
        load_examples(path)
    assert str(caught.value) == f"{path}:2: {reason}"


def test_real_files_load_1000_balanced_examples_each() -> None:
    for path in REAL_FILES:
        loaded = load_examples(path)
        assert len(loaded.examples) == 1000
        assert loaded.skipped == []
        assert Counter(e.label for e in loaded.examples) == {"negative": 500, "positive": 500}
        assert {e.source for e in loaded.examples} == {path.stem}
    assert len(load_sources(REAL_FILES).examples) == 2000


def test_sha256_file(tmp_path: Path) -> None:
    path = write(tmp_path, "x.txt", "abc")
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_file(path) == expected


def split_texts(examples: list[Example]) -> set[str]:
    return {e.text for e in examples}


def test_split_of_real_data_is_stratified_leak_free_and_seeded() -> None:
    examples = load_sources(REAL_FILES).examples
    assert len({e.text for e in examples}) < len(examples), "the data should hold duplicates"
    split = split_examples(examples, labels=LABELS, seed=13)

    assert Counter(split.train + split.validation + split.test) == Counter(examples)
    train, validation, test = map(split_texts, (split.train, split.validation, split.test))
    assert train.isdisjoint(validation) and train.isdisjoint(test)
    assert validation.isdisjoint(test)
    for source in ("amazon_cells_labelled", "yelp_labelled"):
        for label in LABELS:
            sizes = [
                sum(e.source == source and e.label == label for e in side)
                for side in (split.train, split.validation, split.test)
            ]
            assert sum(sizes) == 500
            assert abs(sizes[0] - 400) <= 3 and abs(sizes[1] - 50) <= 3, sizes

    assert split_examples(examples, labels=LABELS, seed=13) == split
    assert split_examples(examples, labels=LABELS, seed=14).test != split.test


def test_the_split_follows_label_ids_not_names() -> None:
    """Renaming the labels (the UCI files' 0/1 became negative/positive) keeps the split."""
    examples = load_sources(REAL_FILES).examples
    renamed = [Example(e.text, str(LABELS.index(e.label)), e.source) for e in examples]

    split = split_examples(examples, labels=LABELS, seed=13)
    again = split_examples(renamed, labels=["0", "1"], seed=13)

    assert [e.text for e in split.test] == [e.text for e in again.test]
    assert [e.text for e in split.validation] == [e.text for e in again.validation]


def test_split_keeps_duplicates_together_whatever_their_label() -> None:
    examples = [Example(f"s{i % 7}", str(i % 2), "src") for i in range(40)]
    for seed in range(5):
        split = split_examples(examples, labels=["0", "1"], seed=seed)
        sides = [split_texts(side) for side in (split.train, split.validation, split.test)]
        assert sum(len(side) for side in sides) == 7
        assert len(split.train) + len(split.validation) + len(split.test) == 40


def test_split_rejects_bad_fractions() -> None:
    with pytest.raises(ValueError, match="summing to 1"):
        split_examples([Example("a", "1", "s")], labels=["1"], seed=0, fractions=(0.8, 0.1, 0.2))


def _labelled(*labels: str) -> list[Example]:
    return [Example(f"text {i}", label, "s") for i, label in enumerate(labels)]


def test_label_names_order_integers_numerically_then_names() -> None:
    assert label_names(_labelled("10", "2", "2", "-1")) == ["-1", "2", "10"]
    assert label_names(_labelled("positive", "neutral", "negative")) == [
        "negative",
        "neutral",
        "positive",
    ]
    assert label_names(_labelled("b", "3", "a")) == ["3", "a", "b"]


def test_label_order_must_name_each_label_found_once() -> None:
    examples = _labelled("pos", "neg", "mixed")
    assert label_names(examples, ["pos", "mixed", "neg"]) == ["pos", "mixed", "neg"]
    with pytest.raises(LabelError) as caught:
        label_names(examples, ["pos", "neg"])
    assert str(caught.value) == (
        "the label order (pos, neg) is not the labels in the data (mixed, neg, pos)"
    )
    with pytest.raises(LabelError, match="names a label twice"):
        label_names(examples, ["pos", "neg", "mixed", "pos"])


def test_one_label_is_not_a_classifier() -> None:
    with pytest.raises(LabelError) as caught:
        label_names(_labelled("yes", "yes"))
    assert str(caught.value) == "a classifier needs at least two labels; the data has only ['yes']"
