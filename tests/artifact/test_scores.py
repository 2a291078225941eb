"""Accuracy, per-label F1 and macro-F1 from true and predicted label ids."""

from __future__ import annotations

import pytest

from attnserve.artifact.scores import Scores


def test_scores_of_a_three_label_confusion() -> None:
    true = [0, 0, 0, 1, 1, 2]
    predicted = [0, 0, 1, 1, 2, 2]

    scores = Scores.of(true, predicted, 3)

    assert scores.confusion == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert scores.examples == 6
    assert scores.accuracy == pytest.approx(4 / 6)
    # F1 = 2 TP / (2 TP + FP + FN): 4/5, 2/4, 2/3
    assert scores.support == [3, 2, 1]
    # precision: right among those predicted; recall: right among those true
    assert scores.precision == pytest.approx([1.0, 0.5, 0.5])
    assert scores.recall == pytest.approx([2 / 3, 0.5, 1.0])
    assert scores.f1 == pytest.approx([0.8, 0.5, 2 / 3])
    assert scores.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_a_label_never_seen_nor_predicted_scores_zero() -> None:
    scores = Scores.of([0, 1], [0, 1], 3)

    assert scores.f1 == [1.0, 1.0, 0.0]
    assert scores.precision == scores.recall == [1.0, 1.0, 0.0]
    assert scores.accuracy == 1.0
