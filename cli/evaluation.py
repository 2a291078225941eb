"""Scores an exported model on the exact test split it was trained against, through ONNX Runtime.

`attnserve evaluate <model_dir>` calls `evaluate`. The split is rebuilt from the manifest's
data files (their sha256 checked) and split seed, and every text goes through the same
`Predictor` the service answers with.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from attnserve.artifact.data import (
    Example,
    first_per_source,
    load_sources,
    sha256_file,
    split_examples,
)
from attnserve.artifact.manifest import Manifest, QuantizationRecord
from attnserve.service.loading import load_artifact
from attnserve.service.predictor import Predictor
from attnserve.service.providers import SessionConfig
from attnserve.service.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class EvaluationError(ValueError):
    """The data cannot rebuild the model's recorded split; the message says how it differs."""


class SplitScores(BaseModel):
    """How the model does on one side of the split."""

    examples: int
    accuracy: float
    macro_f1: float
    confusion: list[list[int]] = Field(
        description="confusion[true][predicted], in the order of `labels`"
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


def evaluate(
    model_dir: Path, data_paths: list[Path] | None = None, settings: Settings | None = None
) -> EvaluationReport:
    """Rebuilds the recorded split and scores its test and validation sides."""
    settings = settings if settings is not None else Settings()
    model = load_artifact(model_dir, SessionConfig.from_settings(settings))
    manifest = model.manifest
    examples = load_sources(_checked_data_paths(manifest, data_paths)).examples
    limit = manifest.training.hyperparameters.get("limit_per_source")
    if isinstance(limit, int) and not isinstance(limit, bool):
        examples = first_per_source(examples, limit)
    split_record = manifest.training.split
    split = split_examples(examples, seed=split_record.seed, fractions=split_record.fractions)
    sizes = {
        "train": len(split.train),
        "validation": len(split.validation),
        "test": len(split.test),
    }
    if sizes != split_record.sizes:
        raise EvaluationError(
            f"The data splits into {sizes}, the manifest recorded {split_record.sizes}: "
            "these are not the examples the model was trained against"
        )
    predictor = Predictor(model, settings)
    return EvaluationReport(
        model=manifest.name,
        version=manifest.version,
        labels=manifest.labels,
        provider=model.provider,
        test=_score(predictor, split.test, settings.max_texts_per_request),
        validation=_score(predictor, split.validation, settings.max_texts_per_request),
        recorded=manifest.metrics,
        quantization=manifest.quantization,
    )


def _checked_data_paths(manifest: Manifest, data_paths: list[Path] | None) -> list[Path]:
    """The given paths (default: the manifest's), each matching its recorded sha256 in order."""
    recorded = manifest.training.data
    paths = data_paths if data_paths is not None else [_locate(Path(f.path)) for f in recorded]
    if len(paths) != len(recorded):
        raise EvaluationError(
            f"Got {len(paths)} data file(s), the model was trained on {len(recorded)}: "
            + ", ".join(f.path for f in recorded)
        )
    for path, expected in zip(paths, recorded, strict=True):
        if not path.is_file():
            raise EvaluationError(f"Data file {path} does not exist (recorded as {expected.path})")
        actual = sha256_file(path)
        if actual != expected.sha256:
            raise EvaluationError(
                f"Data file {path} has sha256 {actual}, the model was trained on "
                f"{expected.path} with sha256 {expected.sha256}"
            )
    return paths


def _locate(path: Path) -> Path:
    # Training records paths as given, usually relative to the project root.
    if path.is_absolute() or path.exists():
        return path
    return PROJECT_ROOT / path


def _score(predictor: Predictor, examples: Sequence[Example], batch_size: int) -> SplitScores:
    labels = predictor.manifest.labels
    # Training leaves out texts without tokens; so does its scoring.
    encoded = predictor.model.encoder.encode([example.text for example in examples])
    kept = [example for example, item in zip(examples, encoded, strict=True) if item.ids]
    confusion = [[0] * len(labels) for _ in labels]
    for start in range(0, len(kept), batch_size):
        chunk = kept[start : start + batch_size]
        result = predictor.predict_sync([example.text for example in chunk])
        for example, prediction in zip(chunk, result.response.predictions, strict=True):
            confusion[example.label][labels.index(prediction.label)] += 1
    total = sum(map(sum, confusion))
    correct = sum(confusion[i][i] for i in range(len(labels)))
    f1s = []
    for i in range(len(labels)):
        predicted = sum(row[i] for row in confusion)
        actual = sum(confusion[i])
        denominator = predicted + actual
        f1s.append(2 * confusion[i][i] / denominator if denominator else 0.0)
    return SplitScores(
        examples=total,
        accuracy=correct / total if total else 0.0,
        macro_f1=sum(f1s) / len(f1s),
        confusion=confusion,
    )
