"""Three-class data the tests make: short reviews labelled negative, neutral or positive (as
strings), under the columns `review` and `sentiment`, in CSV or JSONL."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

LABELS = ["negative", "neutral", "positive"]
TEXT_COLUMN, LABEL_COLUMN = "review", "sentiment"
WORDS = {
    "negative": ["awful", "broken", "terrible", "useless", "refund"],
    "neutral": ["okay", "average", "ordinary", "acceptable", "fine"],
    "positive": ["great", "lovely", "excellent", "perfect", "wonderful"],
}
FILLER = ["the", "phone", "screen", "battery", "was", "really", "service", "and", "food"]


def three_class_rows(per_label: int) -> list[tuple[str, str]]:
    """`per_label` (text, label) rows of each label, interleaved; two words of the label's own."""
    generator = random.Random(7)
    rows = []
    for _ in range(per_label):
        for label in LABELS:
            words = generator.sample(FILLER, 3) + generator.sample(WORDS[label], 2)
            generator.shuffle(words)
            rows.append((" ".join(words).capitalize() + ".", label))
    return rows


def write_three_class_csv(path: Path, per_label: int = 40) -> Path:
    """A CSV `id,review,sentiment` of `three_class_rows`."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", TEXT_COLUMN, LABEL_COLUMN])
        for index, (text, label) in enumerate(three_class_rows(per_label)):
            writer.writerow([index, text, label])
    return path


def write_three_class_jsonl(path: Path, per_label: int = 40) -> Path:
    """The same rows as JSONL objects with the keys `review` and `sentiment`."""
    lines = [
        json.dumps({TEXT_COLUMN: text, LABEL_COLUMN: label})
        for text, label in three_class_rows(per_label)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
