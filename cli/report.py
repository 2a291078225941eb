"""Tables the commands print: class balance, per-label scores and the confusion matrix."""

from __future__ import annotations

from attnserve.artifact.scores import Scores


def class_balance_lines(balance: dict[str, dict[str, int]], labels: list[str]) -> list[str]:
    """How many examples of each label each side of the split holds."""
    sides = list(balance)
    width = max(map(len, labels))
    lines = [f"class balance ({' / '.join(sides)}):"]
    for label in labels:
        counts = " / ".join(str(balance[side].get(label, 0)) for side in sides)
        lines.append(f"  {label:<{width}}  {counts}")
    return lines


def label_score_lines(labels: list[str], scores: Scores, side: str) -> list[str]:
    """Each label's precision, recall, F1 and support, then macro-F1."""
    width = max(len("label"), *map(len, labels))
    lines = [f"{side} by label:", f"  {'label':<{width}}  precision  recall  F1     support"]
    for label, precision, recall, f1, support in zip(
        labels, scores.precision, scores.recall, scores.f1, scores.support, strict=True
    ):
        lines.append(
            f"  {label:<{width}}  {precision:<9.3f}  {recall:<6.3f}  {f1:<5.3f}  {support}"
        )
    lines.append(f"  accuracy {scores.accuracy:.4f}, macro-F1 {scores.macro_f1:.4f}")
    return lines


def confusion_lines(labels: list[str], confusion: list[list[int]], side: str) -> list[str]:
    """The confusion matrix, rows true labels, columns predicted ones."""
    width = max(len(label) for label in labels)
    lines = [
        f"confusion matrix on {side} (rows: true, columns: predicted)",
        f"{'':<{width}}  " + "  ".join(f"{label:>{width}}" for label in labels),
    ]
    for label, row in zip(labels, confusion, strict=True):
        lines.append(f"{label:<{width}}  " + "  ".join(f"{n:>{width}}" for n in row))
    return lines
