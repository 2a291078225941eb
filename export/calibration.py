"""Fits a model's temperature on its validation split and measures the calibration error
before and after on validation and test (artifact/calibration.py has the arithmetic).

`export` calls `calibrate` on the graph it is about to serve; `attnserve calibrate MODEL_DIR`
(`calibrate_model_dir`) does the same for a model directory already exported, rewriting only
its manifest (the graph and tokenizer, whose hashes it records, stay as they are).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from attnserve.artifact.calibration import (
    ECE_BINS,
    expected_calibration_error,
    fit_temperature,
    temperature_scaled,
)
from attnserve.artifact.data import DataSplit, Example, label_ids
from attnserve.artifact.manifest import MODEL_FILE, TOKENIZER_FILE, CalibrationRecord, Manifest
from attnserve.artifact.split import rebuild_split
from attnserve.artifact.tokenizer import TextEncoder
from attnserve.export.graph_run import run_graph

METHOD = "temperature scaling: one T minimising the negative log-likelihood on the validation split"


def calibrate(
    graph: Path, encoder: TextEncoder, split: DataSplit, labels: list[str]
) -> CalibrationRecord:
    """The temperature of `graph`'s probabilities (columns in the order of `labels`) fitted on
    `split.validation`, with the expected calibration error of both splits before and after."""
    measured = {
        name: _probabilities(graph, encoder, examples, labels)
        for name, examples in (("validation", split.validation), ("test", split.test))
    }
    temperature = fit_temperature(*measured["validation"])
    return CalibrationRecord(
        method=METHOD,
        temperature=temperature,
        bins=ECE_BINS,
        ece_before={
            name: expected_calibration_error(probabilities, labels)
            for name, (probabilities, labels) in measured.items()
        },
        ece_after={
            name: expected_calibration_error(temperature_scaled(probabilities, temperature), labels)
            for name, (probabilities, labels) in measured.items()
        },
        examples={name: len(labels) for name, (_, labels) in measured.items()},
    )


def calibrate_model_dir(
    model_dir: Path, data_paths: list[Path] | None = None, root: Path | None = None
) -> Manifest:
    """Calibrates an exported model directory on its recorded split (from `data_paths`, default
    the recorded files); writes and returns the manifest with the new calibration."""
    manifest = Manifest.read(model_dir)
    encoder = TextEncoder.from_file(model_dir / TOKENIZER_FILE, manifest.max_tokens)
    split = rebuild_split(manifest.training, manifest.labels, data_paths, root)
    calibration = calibrate(model_dir / MODEL_FILE, encoder, split, manifest.labels)
    updated = manifest.model_copy(update={"calibration": calibration})
    updated.write(model_dir)
    return updated


def _probabilities(
    graph: Path, encoder: TextEncoder, examples: list[Example], labels: list[str]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The graph's probabilities (N, C) on the examples that have tokens, and their label ids."""
    encoded = encoder.encode([example.text for example in examples])
    kept = [example for item, example in zip(encoded, examples, strict=True) if item.ids]
    items = [item for item in encoded if item.ids]
    probabilities, _ = run_graph(graph, encoder, items)
    return probabilities, np.array(label_ids(kept, labels), dtype=np.int64)
