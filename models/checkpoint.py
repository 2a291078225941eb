"""A trained run on disk: weights + config, tokenizer and training record.

`attnserve train` writes a run directory; `attnserve export` reads it:

    <run>/checkpoint.pt    {"config": ModelConfig dict, "state_dict": ...}
    <run>/tokenizer.json   the tokenizer, unchanged from training
    <run>/training.json    RunRecord: labels, max_tokens, metrics, TrainingRecord
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field

from attnserve.artifact.manifest import TrainingRecord
from attnserve.models.architectures import build_model
from attnserve.models.classifiers import SentimentClassifier
from attnserve.models.config import ModelConfig

CHECKPOINT_FILE = "checkpoint.pt"
TOKENIZER_FILE = "tokenizer.json"
RECORD_FILE = "training.json"


class RunRecord(BaseModel):
    """What training knew about the model, carried into the manifest by export."""

    model_config = ConfigDict(extra="forbid")

    labels: list[str]
    max_tokens: int
    metrics: dict[str, float]
    class_balance: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="split side -> label -> examples"
    )
    test_confusion: list[list[int]] = Field(
        default_factory=list, description="[true][predicted] on the test side, labels' order"
    )
    training: TrainingRecord


@dataclass(frozen=True)
class Checkpoint:
    model: SentimentClassifier
    config: ModelConfig
    record: RunRecord
    tokenizer_path: Path


def save_checkpoint(
    run_dir: Path, model: torch.nn.Module, config: ModelConfig, record: RunRecord
) -> None:
    """Writes weights and record; the caller has already saved tokenizer.json in run_dir."""
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"config": config.to_dict(), "state_dict": model.state_dict()}, run_dir / CHECKPOINT_FILE
    )
    (run_dir / RECORD_FILE).write_text(record.model_dump_json(indent=2) + "\n", "utf-8")


def load_checkpoint(run_dir: Path) -> Checkpoint:
    """Rebuilds the model in eval mode from a run directory."""
    saved = torch.load(run_dir / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    config = ModelConfig(**saved["config"])
    model = build_model(config)
    model.load_state_dict(saved["state_dict"])
    model.eval()
    record = RunRecord.model_validate_json((run_dir / RECORD_FILE).read_text("utf-8"))
    return Checkpoint(
        model=model, config=config, record=record, tokenizer_path=run_dir / TOKENIZER_FILE
    )
