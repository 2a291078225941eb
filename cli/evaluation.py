"""Scores an exported model on the exact test split it was trained against, through ONNX Runtime.

`attnserve evaluate <model_dir>` calls `evaluate`. The split is rebuilt from the manifest's
data files (their sha256 checked) and split seed, and every text goes through the same
predictor, batcher and session the service answers with.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from attnserve.artifact.calibration import (
    CONSISTENCY_DRAWS,
    CONSISTENCY_INTERVAL,
    calibrated_error_spread,
    expected_calibration_error,
)
from attnserve.artifact.data import Example, label_ids
from attnserve.artifact.manifest import CalibrationRecord, QuantizationRecord
from attnserve.artifact.scores import Scores
from attnserve.artifact.split import rebuild_split
from attnserve.service.loading import load_artifact
from attnserve.service.predictor import Predictor
from attnserve.service.providers import SessionConfig
from attnserve.service.registry import build_predictor
from attnserve.service.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BEHAVIOUR_SET = PROJECT_ROOT / "data" / "behaviour" / "behaviour.tsv"


@dataclass(frozen=True)
class BehaviourCase:
    """One sentence of the behaviour set: its category and the label a person gives it."""

    category: str
    text: str
    label: str


def load_behaviour(path: Path) -> list[BehaviourCase]:
    """The behaviour set: a TSV of `category`, `text` and `label` (negative or positive)."""
    with path.open(encoding="utf-8", newline="") as file:
        return [
            BehaviourCase(row["category"], row["text"], row["label"])
            for row in csv.DictReader(file, delimiter="\t")
        ]


class ErrorSpread(BaseModel):
    """The ECE perfectly calibrated probabilities with the served confidences show on as many
    texts (consistency resampling): its median, and the bounds of the middle draws."""

    median: float
    low: float
    high: float
    interval: float = Field(CONSISTENCY_INTERVAL, description="share of the draws in [low, high]")
    draws: int = CONSISTENCY_DRAWS


class SplitScores(BaseModel):
    """How the model does on one side of the split."""

    examples: int
    accuracy: float
    macro_f1: float
    confusion: list[list[int]] = Field(
        description="confusion[true][predicted], in the order of `labels`"
    )
    calibration_error: float = Field(
        description="Expected calibration error (10 bins) of the served probabilities"
    )
    calibrated_error: ErrorSpread = Field(
        description="The calibration error a perfectly calibrated model would show here"
    )


class CategoryScore(BaseModel):
    """How the model does on one category of the behaviour set."""

    correct: int
    examples: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.examples


class EvaluationReport(BaseModel):
    """Scores measured through ONNX Runtime, next to the metrics the manifest recorded."""

    model: str
    version: str
    labels: list[str]
    provider: str
    test: SplitScores
    validation: SplitScores
    recorded: dict[str, float] = Field(description="The manifest's metrics, from PyTorch.")
    quantization: QuantizationRecord | None = Field(
        default=None, description="The manifest's int8 vs fp32 figures, for an int8 model."
    )
    calibration: CalibrationRecord | None = Field(
        default=None, description="The manifest's temperature and calibration errors."
    )
    behaviour: dict[str, CategoryScore] = Field(
        default_factory=dict,
        description="category -> score on the behaviour set (data/behaviour/), written by "
        "hand outside amazon and yelp: never trained, tuned or chosen on",
    )


def evaluate(
    model_dir: Path,
    data_paths: list[Path] | None = None,
    settings: Settings | None = None,
    behaviour_path: Path | None = BEHAVIOUR_SET,
) -> EvaluationReport:
    """Rebuilds the recorded split and scores its test and validation sides, and the behaviour
    set by category (when `behaviour_path` exists)."""
    settings = settings if settings is not None else Settings()
    model = load_artifact(model_dir, SessionConfig.from_settings(settings))
    manifest = model.manifest
    split = rebuild_split(manifest.training, manifest.labels, data_paths, PROJECT_ROOT)
    predictor = build_predictor(model, settings)

    cases = load_behaviour(behaviour_path) if behaviour_path and behaviour_path.is_file() else []
    # the behaviour set is for sentiment models: one whose labels it does not use skips it
    if not {case.label for case in cases} <= set(manifest.labels):
        cases = []

    async def score_all() -> tuple[SplitScores, SplitScores, dict[str, CategoryScore]]:
        try:
            return (
                await _score(predictor, split.test),
                await _score(predictor, split.validation),
                await _score_behaviour(predictor, cases),
            )
        finally:
            await predictor.close()

    test, validation, behaviour = asyncio.run(score_all())
    return EvaluationReport(
        model=manifest.name,
        version=manifest.version,
        labels=manifest.labels,
        provider=model.provider,
        test=test,
        validation=validation,
        recorded=manifest.metrics,
        quantization=manifest.quantization,
        calibration=manifest.calibration,
        behaviour=behaviour,
    )


async def _score_behaviour(
    predictor: Predictor, cases: Sequence[BehaviourCase]
) -> dict[str, CategoryScore]:
    predicted: list[int] = []
    for start in range(0, len(cases), predictor.limits.max_texts):
        chunk = cases[start : start + predictor.limits.max_texts]
        predictions = await predictor.predict([case.text for case in chunk])
        predicted.extend(predictions.label_ids.tolist())
    labels = predictor.manifest.labels
    scores: dict[str, CategoryScore] = {}
    for case, label_id in zip(cases, predicted, strict=True):
        seen = scores.get(case.category, CategoryScore(correct=0, examples=0))
        scores[case.category] = CategoryScore(
            correct=seen.correct + int(labels[label_id] == case.label),
            examples=seen.examples + 1,
        )
    return scores


async def _score(predictor: Predictor, examples: Sequence[Example]) -> SplitScores:
    # Training leaves out texts without tokens; so does its scoring.
    encoded = predictor.model.encoder.encode([example.text for example in examples])
    kept = [example for example, item in zip(examples, encoded, strict=True) if item.ids]
    batch_size = predictor.limits.max_texts
    probabilities = []
    for start in range(0, len(kept), batch_size):
        chunk = kept[start : start + batch_size]
        predictions = await predictor.predict([example.text for example in chunk])
        probabilities.append(predictions.probabilities)
    served = np.concatenate(probabilities)  # (N, C)
    labels = np.array(label_ids(kept, predictor.manifest.labels), dtype=np.int64)
    scores = Scores.of(labels.tolist(), served.argmax(axis=1).tolist(), served.shape[1])
    return SplitScores(
        examples=scores.examples,
        accuracy=scores.accuracy,
        macro_f1=scores.macro_f1,
        confusion=scores.confusion,
        calibration_error=expected_calibration_error(served, labels),
        calibrated_error=ErrorSpread(**calibrated_error_spread(served)._asdict()),
    )
