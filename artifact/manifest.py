"""The manifest of a model directory: the contract between `export/` (writer) and `service/`.

A model directory is `<repository>/<name>/<version>/` holding `model.onnx`, `tokenizer.json`
and `manifest.json`. Every architecture's graph has the inputs and outputs of `graph.py`; the
manifest declares them (and the optional `heads` output, which the service runs only when a
request asks for it), with what the model was trained on, how it scored and how to serve it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
FORMAT_VERSION = 1


class TensorSpec(BaseModel):
    """One graph input or output: its name, element type and axes (strings are dynamic)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    dtype: Literal["int64", "float32"]
    shape: list[str | int]


class DataFile(BaseModel):
    """A data file the model was trained on, and its sha256."""

    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str


class SplitRecord(BaseModel):
    """How the data was split, so that `evaluate` can rebuild the exact test set."""

    model_config = ConfigDict(extra="forbid")

    seed: int
    fractions: tuple[float, float, float]
    sizes: dict[str, int] = Field(description="train/validation/test sizes")


class TrainingRecord(BaseModel):
    """What the model was trained on and with."""

    model_config = ConfigDict(extra="forbid")

    data: list[DataFile]
    text_column: str = Field(
        default="text", description="the CSV/TSV column or JSONL key the texts were read from"
    )
    label_column: str = Field(
        default="label", description="the CSV/TSV column or JSONL key the labels were read from"
    )
    split: SplitRecord
    seed: int
    hyperparameters: dict[str, float | int | str | bool]
    epochs_run: int
    best_epoch: int


class ParityRecord(BaseModel):
    """PyTorch vs ONNX Runtime on real sentences, at shapes unlike the export example's."""

    model_config = ConfigDict(extra="forbid")

    tolerance: float
    max_abs_diff: dict[str, float] = Field(description="output name -> max |torch - onnx|")
    shapes: list[tuple[int, int]] = Field(description="(batch, length) shapes checked")


class QuantizationRecord(BaseModel):
    """How the served int8 graph compares with the fp32 graph it was quantised from."""

    model_config = ConfigDict(extra="forbid")

    method: str = Field(description="e.g. ONNX Runtime dynamic int8 (QInt8 weights)")
    fp32_bytes: int
    int8_bytes: int
    fp32_test_accuracy: float
    int8_test_accuracy: float
    agreement: float = Field(description="share of test texts given the same label by both")
    max_abs_diff: dict[str, float] = Field(
        description="output name -> max |fp32 - int8| over the test texts"
    )
    test_examples: int


class FaithfulnessRecord(BaseModel):
    """How far the attention explains the predictions: comprehensiveness (AOPC) on the test
    split when each ranking's top-k tokens are deleted, k in `ks` (models/faithfulness.py)."""

    model_config = ConfigDict(extra="forbid")

    ks: list[int]
    sentences: int
    aopc: dict[str, float] = Field(
        description="ranking -> mean drop of the predicted class's probability: attention "
        "(absent without attention), random, gradient_x_input"
    )
    summary: str = Field(description="The figures in one sentence, for a person")


class CalibrationRecord(BaseModel):
    """The temperature the service divides the graph's logits by (artifact/calibration.py),
    fitted on the validation split, and the expected calibration error before and after."""

    model_config = ConfigDict(extra="forbid")

    method: str = Field(description="How the temperature was fitted")
    temperature: float = Field(gt=0, description="T in softmax(logits / T); above 1 softens")
    bins: int = Field(description="Equal-width confidence bins of the calibration error")
    ece_before: dict[str, float] = Field(
        description="split (validation, test) -> expected calibration error of the graph's "
        "own probabilities"
    )
    ece_after: dict[str, float] = Field(
        description="split -> expected calibration error of the served, calibrated ones"
    )
    examples: dict[str, int] = Field(description="split -> texts measured")

    def summary(self) -> str:
        """The temperature and the errors in one line, for a person."""
        errors = ", ".join(
            f"{split} {self.ece_before[split]:.4f} -> {after:.4f}"
            for split, after in self.ece_after.items()
        )
        return (
            f"temperature {self.temperature:.4f}; ECE ({self.bins} bins) before -> after: {errors}"
        )


class ServingHints(BaseModel):
    """How the service should run the model, chosen at export; a setting may override each."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int | None = Field(
        default=None,
        ge=1,
        description="most texts in one ONNX Runtime call; None: the service's default. A model "
        "that pays more for padding than it saves by batching is run a text at a time (1).",
    )
    group_by_length: bool = Field(
        default=False,
        description="when more texts wait than a batch holds, batch the oldest with those "
        "nearest it in length, for a model whose cost grows with the padded length.",
    )
    spinning: bool = Field(
        default=False,
        description="let ONNX Runtime's threads spin a moment for more work before they sleep: "
        "for a model whose runs wake its threads many times (the encoder's many operators), "
        "not where the spinning threads take the cores the event loop needs.",
    )
    batch_per_core: bool = Field(
        default=False,
        description="compute one batch per core at once, each on one ONNX Runtime thread, "
        "instead of one batch at a time on every core: for a model whose batches compute long "
        "enough (the encoder's milliseconds) that cores side by side serve more than cores "
        "sharing each operator.",
    )


class Manifest(BaseModel):
    """Everything the service needs to trust and describe one exported model."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    name: str
    version: str
    architecture: str
    description: str
    has_attention: bool = Field(description="False for models without attention (e.g. lstm)")
    labels: list[str] = Field(
        description="the label names, in the order of the probabilities output's columns"
    )
    max_tokens: int = Field(description="longer texts are truncated to this many tokens")
    pad_token_id: int
    unk_token_id: int
    tokenization: Literal["words", "wordpieces"] = Field(
        default="words",
        description="words: each token is a word; wordpieces: tokens are pieces of words, "
        "whose attention the service sums into words",
    )
    special_tokens: list[str] = Field(
        default_factory=list,
        description="tokens the tokenizer adds around every text (e.g. [CLS], [SEP]); "
        "never part of an answer",
    )
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    opset: int
    metrics: dict[str, float] = Field(description="e.g. validation_accuracy, test_accuracy")
    training: TrainingRecord
    parity: ParityRecord
    quantization: QuantizationRecord | None = Field(
        default=None, description="set when model.onnx is an int8 quantisation"
    )
    faithfulness: FaithfulnessRecord | None = Field(
        default=None, description="absent in models exported before it was measured"
    )
    calibration: CalibrationRecord | None = Field(
        default=None,
        description="the temperature the service applies to the graph's probabilities; "
        "absent: they are served as they are",
    )
    serving: ServingHints = Field(default_factory=ServingHints)
    graph_optimization: str | None = Field(
        default=None, description="how model.onnx was optimised offline at export, if it was"
    )
    files: dict[str, str] = Field(description="file name -> sha256, for every artifact file")
    libraries: dict[str, str]
    created_at: str

    @classmethod
    def read(cls, model_dir: Path) -> Manifest:
        return cls.model_validate_json((model_dir / MANIFEST_FILE).read_text(encoding="utf-8"))

    def write(self, model_dir: Path) -> None:
        (model_dir / MANIFEST_FILE).write_text(self.model_dump_json(indent=2) + "\n", "utf-8")
