"""Scores an exported model on the exact test split it was trained against, through ONNX Runtime.

`attnserve evaluate <model_dir>` calls `evaluate`. The split is rebuilt from the manifest's
data files (their sha256 checked) and split seed, and every text goes through the same
predictor, batcher and session the service answers with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from attnserve.artifact.calibration import expected_calibration_error
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


def evaluate(
    model_dir: Path, data_paths: list[Path] | None = None, settings: Settings | None = None
) -> EvaluationReport:
    """Rebuilds the recorded split and scores its test and validation sides."""
    settings = settings if settings is not None else Settings()
    model = load_artifact(model_dir, SessionConfig.from_settings(settings))
    manifest = model.manifest
    split = rebuild_split(manifest.training, manifest.labels, data_paths, PROJECT_ROOT)
    predictor = build_predictor(model, settings)

    async def score_both() -> tuple[SplitScores, SplitScores]:
        try:
            return await _score(predictor, split.test), await _score(predictor, split.validation)
        finally:
            await predictor.close()

    test, validation = asyncio.run(score_both())
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
    )


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
    )
