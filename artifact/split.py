"""A model's recorded split, rebuilt from its data files: what `evaluate` scores and `export`
checks against. The files must be the ones trained on (their sha256 is recorded), cut and
split as recorded, and come out at the recorded sizes."""

from __future__ import annotations

from pathlib import Path

from attnserve.artifact.data import (
    Columns,
    DataSplit,
    first_per_source,
    load_sources,
    sha256_file,
    split_examples,
)
from attnserve.artifact.manifest import TrainingRecord


class SplitMismatch(ValueError):
    """The data cannot rebuild the recorded split; the message says how it differs."""


def rebuild_split(
    training: TrainingRecord,
    labels: list[str],
    data_paths: list[Path] | None = None,
    root: Path | None = None,
) -> DataSplit:
    """The recorded train/validation/test split of a model with `labels`, from `data_paths`
    (default: the recorded paths, a relative one tried against `root` when it is not found as
    given), read through the recorded columns."""
    columns = Columns(text=training.text_column, label=training.label_column)
    examples = load_sources(_checked_paths(training, data_paths, root), columns=columns).examples
    unknown = sorted({example.label for example in examples} - set(labels))
    if unknown:
        raise SplitMismatch(
            f"The data has label(s) {unknown} the model does not know ({', '.join(labels)})"
        )
    limit = training.hyperparameters.get("limit_per_source")
    if isinstance(limit, int) and not isinstance(limit, bool):
        examples = first_per_source(examples, limit)
    split = split_examples(
        examples, labels=labels, seed=training.split.seed, fractions=training.split.fractions
    )
    sizes = {
        "train": len(split.train),
        "validation": len(split.validation),
        "test": len(split.test),
    }
    if sizes != training.split.sizes:
        raise SplitMismatch(
            f"The data splits into {sizes}, the manifest recorded {training.split.sizes}: "
            "these are not the examples the model was trained against"
        )
    return split


def _checked_paths(
    training: TrainingRecord, data_paths: list[Path] | None, root: Path | None
) -> list[Path]:
    """The given paths (default: the recorded ones), each matching its recorded sha256 in order."""
    recorded = training.data
    paths = (
        data_paths if data_paths is not None else [_locate(Path(f.path), root) for f in recorded]
    )
    if len(paths) != len(recorded):
        raise SplitMismatch(
            f"Got {len(paths)} data file(s), the model was trained on {len(recorded)}: "
            + ", ".join(f.path for f in recorded)
        )
    for path, expected in zip(paths, recorded, strict=True):
        if not path.is_file():
            raise SplitMismatch(f"Data file {path} does not exist (recorded as {expected.path})")
        actual = sha256_file(path)
        if actual != expected.sha256:
            raise SplitMismatch(
                f"Data file {path} has sha256 {actual}, the model was trained on "
                f"{expected.path} with sha256 {expected.sha256}"
            )
    return paths


def _locate(path: Path, root: Path | None) -> Path:
    # Training records paths as given, usually relative to the directory it ran in.
    if path.is_absolute() or path.exists() or root is None:
        return path
    return root / path
