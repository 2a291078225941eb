"""How predicted labels score against the true ones: accuracy, macro-F1, the confusion matrix.

One definition for training's report, `attnserve evaluate` and the reference classifiers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Scores:
    """`confusion[true][predicted]`, over label ids 0..n-1."""

    confusion: list[list[int]]

    @classmethod
    def of(cls, true: Sequence[int], predicted: Sequence[int], labels: int) -> Scores:
        confusion = [[0] * labels for _ in range(labels)]
        for expected, got in zip(true, predicted, strict=True):
            confusion[expected][got] += 1
        return cls(confusion)

    @property
    def examples(self) -> int:
        return sum(map(sum, self.confusion))

    @property
    def accuracy(self) -> float:
        correct = sum(self.confusion[i][i] for i in range(len(self.confusion)))
        return correct / self.examples if self.examples else 0.0

    @property
    def support(self) -> list[int]:
        """How many examples each label truly has."""
        return [sum(row) for row in self.confusion]

    @property
    def precision(self) -> list[float]:
        """Each label's share of right answers among the examples given it (0 if none were)."""
        predicted = [sum(column) for column in zip(*self.confusion, strict=True)]
        return [self.confusion[i][i] / count if count else 0.0 for i, count in enumerate(predicted)]

    @property
    def recall(self) -> list[float]:
        """Each label's share of its examples given it (0 for a label with none)."""
        return [
            self.confusion[i][i] / count if count else 0.0 for i, count in enumerate(self.support)
        ]

    @property
    def f1(self) -> list[float]:
        """Each label's F1 (0 for a label neither true nor predicted)."""
        scores = []
        for i, row in enumerate(self.confusion):
            predicted = sum(other[i] for other in self.confusion)
            denominator = predicted + sum(row)
            scores.append(2 * row[i] / denominator if denominator else 0.0)
        return scores

    @property
    def macro_f1(self) -> float:
        return sum(self.f1) / len(self.f1) if self.f1 else 0.0
