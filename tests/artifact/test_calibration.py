"""Temperature scaling and the expected calibration error, on figures worked by hand and on
synthetic predictions whose true temperature is known."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from attnserve.artifact.calibration import (
    calibrated_error_spread,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    temperature_scaled,
)


def _softmax(logits: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities: npt.NDArray[np.float32] = (shifted / shifted.sum(axis=1, keepdims=True)).astype(
        np.float32
    )
    return probabilities


def test_scaling_by_a_temperature_is_softmax_of_the_logits_divided_by_it() -> None:
    logits = np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 3.0]])

    scaled = temperature_scaled(_softmax(logits), 2.5)

    np.testing.assert_allclose(scaled, _softmax(logits / 2.5), atol=1e-6)
    assert scaled.dtype == np.float32
    # the label never changes, only how sure it sounds
    assert scaled.argmax(axis=1).tolist() == logits.argmax(axis=1).tolist()


def test_a_probability_that_underflowed_to_zero_still_scales() -> None:
    scaled = temperature_scaled(np.array([[1.0, 0.0]], dtype=np.float32), 4.0)

    assert np.isfinite(scaled).all()
    assert scaled[0, 0] > 0.99 and scaled[0, 1] > 0.0


def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_with() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(20_000, 2))
    truth = _softmax(logits / 2.5)  # the model is 2.5x too sure of itself
    labels = (rng.random(len(truth)) < truth[:, 1]).astype(np.int64)
    overconfident = _softmax(logits)

    temperature = fit_temperature(overconfident, labels)

    assert temperature == pytest.approx(2.5, rel=0.05)
    calibrated = temperature_scaled(overconfident, temperature)
    assert negative_log_likelihood(calibrated, labels) < negative_log_likelihood(
        overconfident, labels
    )
    assert expected_calibration_error(calibrated, labels) < 0.02
    assert expected_calibration_error(overconfident, labels) > 0.05


def test_calibration_error_by_hand() -> None:
    # two answers at 0.95 (one right), two at 0.55 (both right): each bin is half the
    # answers and 0.45 away from its accuracy
    probabilities = np.array([[0.95, 0.05], [0.05, 0.95], [0.55, 0.45], [0.45, 0.55]])
    labels = np.array([0, 0, 0, 1])

    error = expected_calibration_error(probabilities.astype(np.float32), labels)

    assert error == pytest.approx(0.5 * 0.45 + 0.5 * 0.45, abs=1e-6)


def test_a_calibrated_model_on_few_texts_lands_where_the_spread_says() -> None:
    rng = np.random.default_rng(1)
    probabilities = _softmax(rng.normal(scale=3.0, size=(200, 2)))
    predicted = probabilities.argmax(axis=1)
    # 300 test sets of 200 texts whose labels follow the probabilities exactly
    errors = []
    for _ in range(300):
        right = rng.random(200) < probabilities.max(axis=1)
        labels = np.where(right, predicted, 1 - predicted)
        errors.append(expected_calibration_error(probabilities, labels))

    spread = calibrated_error_spread(probabilities)

    assert spread.low < spread.median < spread.high
    assert spread.median > 0.01  # far from 0 on 200 texts, though perfectly calibrated
    assert spread.median == pytest.approx(float(np.median(errors)), rel=0.25)
    inside = np.mean([spread.low <= error <= spread.high for error in errors])
    assert 0.8 <= inside <= 1.0


def test_the_spread_narrows_with_more_texts_and_is_nil_for_certain_answers() -> None:
    rng = np.random.default_rng(2)
    probabilities = _softmax(rng.normal(scale=3.0, size=(3200, 2)))

    few, many = calibrated_error_spread(probabilities[:200]), calibrated_error_spread(probabilities)

    assert many.median < few.median / 2.5  # ~1/sqrt(16) of it
    certain = np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (50, 1))
    assert calibrated_error_spread(certain) == (0.0, 0.0, 0.0)
