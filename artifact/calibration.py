"""Temperature scaling: one scalar T per model, fitted on the validation split, that makes the
served probabilities mean what they say (Guo et al., 2017).

    calibrated = softmax(log(p) / T)  ==  softmax(logits / T)

Dividing the logits by T > 0 never changes which label is most probable, only how sure the
answer sounds. Export fits T (export/calibration.py) and records it in the manifest; the
service applies it to every batch it runs (service/inference.py). The expected calibration error
(ECE) compares confidence with accuracy in equal-width bins of confidence; on a few hundred
texts it is noisy, and `calibrated_error_spread` says where a perfectly calibrated model's
would land.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

ECE_BINS = 10
# draws of consistency resampling, and the share of them its interval holds
CONSISTENCY_DRAWS = 2000
CONSISTENCY_INTERVAL = 0.9
# log(0) would be -inf: a probability that underflowed to 0 counts as the smallest float32
_TINY = np.finfo(np.float32).tiny
# T is searched on a log scale between these (a model can be 20x over- or under-confident)
_LOG_T_RANGE = (np.log(0.05), np.log(20.0))


def temperature_scaled(
    probabilities: npt.NDArray[np.float32], temperature: float
) -> npt.NDArray[np.float32]:
    """softmax(log(p) / T) row by row: (B, C) -> (B, C), float32."""
    if temperature == 1.0:
        return probabilities
    scaled = np.log(np.maximum(probabilities, _TINY)) / np.float32(temperature)  # (B, C)
    scaled -= scaled.max(axis=1, keepdims=True)
    exponentials = np.exp(scaled)
    calibrated: npt.NDArray[np.float32] = (
        exponentials / exponentials.sum(axis=1, keepdims=True)
    ).astype(np.float32)
    return calibrated


def negative_log_likelihood(
    probabilities: npt.NDArray[np.float32], labels: npt.NDArray[np.int64]
) -> float:
    """Mean -log p(true label)."""
    true = probabilities[np.arange(len(labels)), labels]
    return float(-np.log(np.maximum(true, _TINY)).mean())


def fit_temperature(probabilities: npt.NDArray[np.float32], labels: npt.NDArray[np.int64]) -> float:
    """The T minimising the negative log-likelihood of `labels` (golden-section search on
    log T; the likelihood is convex in 1/T)."""
    if len(labels) == 0:
        raise ValueError("fitting a temperature needs at least one labelled example")

    def loss(log_t: float) -> float:
        return negative_log_likelihood(
            temperature_scaled(probabilities, float(np.exp(log_t))), labels
        )

    low, high = _LOG_T_RANGE
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = low + (1 - ratio) * (high - low), low + ratio * (high - low)
    loss_a, loss_b = loss(a), loss(b)
    for _ in range(60):
        if loss_a <= loss_b:
            high, b, loss_b = b, a, loss_a
            a = low + (1 - ratio) * (high - low)
            loss_a = loss(a)
        else:
            low, a, loss_a = a, b, loss_b
            b = low + ratio * (high - low)
            loss_b = loss(b)
    return round(float(np.exp((low + high) / 2.0)), 4)


def expected_calibration_error(
    probabilities: npt.NDArray[np.float32], labels: npt.NDArray[np.int64], bins: int = ECE_BINS
) -> float:
    """sum over bins of |bin| / N * |accuracy(bin) - mean confidence(bin)|, the bins splitting
    the top-label confidence (0, 1] into `bins` equal widths."""
    if len(labels) == 0:
        raise ValueError("calibration error needs at least one labelled example")
    confidence = probabilities.max(axis=1)  # (N,)
    correct = probabilities.argmax(axis=1) == labels  # (N,)
    # bin b holds confidences in (b / bins, (b + 1) / bins]
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)  # (N,)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            gap = abs(float(correct[inside].mean()) - float(confidence[inside].mean()))
            error += float(inside.mean()) * gap
    return error


class Spread(NamedTuple):
    median: float
    low: float
    high: float


def calibrated_error_spread(
    probabilities: npt.NDArray[np.float32],
    bins: int = ECE_BINS,
    draws: int = CONSISTENCY_DRAWS,
    seed: int = 0,
) -> Spread:
    """The ECE a perfectly calibrated model with these confidences shows on as many texts:
    (median, low, high), low and high bounding CONSISTENCY_INTERVAL of the draws. Consistency
    resampling (Broecker and Smith, 2007): each draw resamples the texts with replacement and
    makes each right with the probability its confidence says. An ECE inside it is what
    calibrated probabilities give on so few texts."""
    if len(probabilities) == 0:
        raise ValueError("calibration error needs at least one example")
    random = np.random.default_rng(seed)
    count = len(probabilities)
    predicted = probabilities.argmax(axis=1)  # (N,)
    confidence = probabilities.max(axis=1)  # (N,)
    errors = np.empty(draws)
    for draw in range(draws):
        rows = random.integers(0, count, count)  # (N,)
        right = random.random(count) < confidence[rows]  # (N,)
        # a wrong answer's label is any other than the one predicted: the error only counts
        # whether the label is the predicted one
        labels = np.where(right, predicted[rows], predicted[rows] + 1)
        errors[draw] = expected_calibration_error(probabilities[rows], labels, bins)
    tail = (1.0 - CONSISTENCY_INTERVAL) / 2.0 * 100.0
    low, median, high = np.percentile(errors, [tail, 50.0, 100.0 - tail])
    return Spread(float(median), float(low), float(high))
