"""Export a trained run to a model directory the service can load (backs `attnserve export`).

    attnserve export runs/bilstm-additive --name bilstm-additive

writes `<repository>/<name>/<version>/` with model.onnx, tokenizer.json and manifest.json,
after checking the ONNX graph and its parity with PyTorch. The directory appears only when
every check has passed: it is built beside the target and renamed into place.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import onnx
import onnxruntime
import tokenizers
import torch

from attnserve.artifact.data import Example, label_ids, sha256_file
from attnserve.artifact.graph import INPUT_NAMES
from attnserve.artifact.manifest import (
    MODEL_FILE,
    TOKENIZER_FILE,
    CalibrationRecord,
    FaithfulnessRecord,
    Manifest,
    ParityRecord,
    QuantizationRecord,
    ServingHints,
    TensorSpec,
)
from attnserve.artifact.split import rebuild_split
from attnserve.artifact.tokenizer import TextEncoder
from attnserve.export.calibration import calibrate
from attnserve.export.gelu import DESCRIPTION as GELU_FUSION
from attnserve.export.gelu import fuse_gelu_file
from attnserve.export.graph import graph_module, graph_outputs
from attnserve.export.optimize import OptimizationLevel, describe, optimize_graph
from attnserve.export.parity import check_parity
from attnserve.export.quantize import compare_int8, quantize_int8
from attnserve.export.spec import BATCH, MAX_SEQUENCE, OPSET, SEQUENCE, dynamic_axes, input_specs
from attnserve.models.architectures import ARCHITECTURES, Exporter
from attnserve.models.checkpoint import Checkpoint, load_checkpoint
from attnserve.models.config import ModelConfig
from attnserve.models.faithfulness import measure_faithfulness

EXAMPLE_LENGTHS = (5, 3)
DYNAMO_OPSET = 18
FP32_FILE = "model.fp32.onnx"  # the graph int8 is quantised from; not part of the artifact


def export_run(
    run_dir: Path,
    repository: Path,
    *,
    name: str,
    version: str = "1",
    parity_sentences: list[str] | None = None,
    overwrite: bool = False,
    int8: bool = False,
    max_accuracy_drop: float = 0.005,
    min_agreement: float = 0.99,
    optimize: OptimizationLevel | None = None,
) -> Path:
    """Exports, checks and writes `repository/name/version`; returns that directory.

    With `int8`, the served model.onnx is the static int8 quantisation of the checked fp32
    graph, calibrated on the run's training split, compared with it on the test split
    (export/quantize.py) and recorded. The
    served graph's temperature is fitted on the validation split (export/calibration.py).
    """
    target = repository / name / version
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    checkpoint = load_checkpoint(run_dir)
    encoder = TextEncoder.from_file(checkpoint.tokenizer_path, checkpoint.record.max_tokens)
    _check_run_consistency(checkpoint, encoder)
    sentences = parity_sentences if parity_sentences is not None else held_out_sentences(checkpoint)
    graph, outputs = graph_module(checkpoint.model), graph_outputs(checkpoint.model)
    with _staging(repository) as staging:
        fp32_path = staging / (FP32_FILE if int8 else MODEL_FILE)
        export_onnx(graph, checkpoint.config, outputs, fp32_path)
        if optimize is not None:
            # The optimised graph replaces the exported one, then faces the same parity check.
            exported = staging / "exported.onnx"
            fp32_path.rename(exported)
            optimize_graph(exported, fp32_path, optimize)
            exported.unlink()
        # the served graph's GELUs fused before the check that covers it (int8: below)
        fused_gelus = 0 if int8 else fuse_gelu_file(fp32_path, fp32_path)
        parity = check_parity(
            graph,
            fp32_path,
            encoder,
            sentences,
            output_names=[spec.name for spec in outputs],
        )
        faithfulness = measure_faithfulness(
            checkpoint.model,
            encoder,
            sentences,
            has_attention=ARCHITECTURES[checkpoint.config.architecture].has_attention,
        )
        quantization = None
        labels = checkpoint.record.labels
        split = rebuild_split(checkpoint.record.training, labels)
        if int8:
            quantize_int8(
                fp32_path, staging / MODEL_FILE, encoder, [example.text for example in split.train]
            )
            fused_gelus = fuse_gelu_file(staging / MODEL_FILE, staging / MODEL_FILE)
            test = split.test
            quantization = compare_int8(
                fp32_path,
                staging / MODEL_FILE,
                encoder,
                [example.text for example in test],
                label_ids(test, labels),
                max_accuracy_drop=max_accuracy_drop,
                min_agreement=min_agreement,
            )
            # kept beside the run for benchmarks (bench/latency.py); not part of the artifact
            shutil.move(fp32_path, run_dir / FP32_FILE)
        # the served graph's own probabilities are what the temperature scales
        calibration = calibrate(staging / MODEL_FILE, encoder, split, labels)
        shutil.copyfile(checkpoint.tokenizer_path, staging / TOKENIZER_FILE)
        manifest = build_manifest(
            checkpoint,
            encoder,
            parity,
            staging,
            name=name,
            version=version,
            outputs=outputs,
            faithfulness=faithfulness,
            quantization=quantization,
            calibration=calibration,
        )
        optimizations = [describe(optimize)] if optimize is not None else []
        optimizations += [GELU_FUSION] if fused_gelus else []
        if optimizations:
            manifest = manifest.model_copy(update={"graph_optimization": "; ".join(optimizations)})
        manifest.write(staging)
        _move_into_place(staging, target)
    return target


def export_onnx(
    model: torch.nn.Module,
    config: ModelConfig,
    outputs: list[TensorSpec],
    path: Path,
    exporter: Exporter | None = None,
) -> None:
    """Writes the ONNX graph with dynamic batch and sequence axes with `exporter` (default:
    the architecture's declared one), then checks it."""
    exporter = exporter or ARCHITECTURES[config.architecture].exporter
    EXPORTERS[exporter](model, _example_inputs(config), outputs, path)
    onnx.checker.check_model(str(path), full_check=True)


def _export_legacy(
    model: torch.nn.Module,
    example: tuple[torch.Tensor, torch.Tensor],
    outputs: list[TensorSpec],
    path: Path,
) -> None:
    """TorchScript tracing: keeps an nn.LSTM's sequence axis dynamic."""
    with warnings.catch_warnings():
        # the LSTMs start from zero states, which ONNX sizes per batch; parity checks that
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size")
        # nn.LSTM's own shape checks, constant for a given model
        warnings.filterwarnings(
            "ignore", "Converting a tensor to a Python boolean", module="torch.nn.modules.rnn"
        )
        # the dynamo exporter fixes an nn.LSTM's sequence length at the example's and still
        # reports success; the legacy TorchScript exporter keeps the axis dynamic
        torch.onnx.export(
            model,
            example,
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=[spec.name for spec in outputs],
            dynamic_axes=dynamic_axes(outputs),
            opset_version=OPSET,
            dynamo=False,
        )


def _export_dynamo(
    model: torch.nn.Module,
    example: tuple[torch.Tensor, torch.Tensor],
    outputs: list[TensorSpec],
    path: Path,
) -> None:
    """torch.export: symbolic batch and sequence sizes, where tracing would bake reshapes in."""
    batch, sequence = torch.export.Dim(BATCH), torch.export.Dim(SEQUENCE, max=MAX_SEQUENCE)
    axes = {0: batch, 1: sequence}
    with warnings.catch_warnings(), contextlib.redirect_stdout(None):
        warnings.simplefilter("ignore")  # deprecation chatter of the exporter's own internals
        program = torch.onnx.export(
            model,
            example,
            input_names=list(INPUT_NAMES),
            output_names=[spec.name for spec in outputs],
            dynamic_shapes=(axes, axes),
            opset_version=DYNAMO_OPSET,
            dynamo=True,
            verbose=False,
        )
    if program is None:
        raise RuntimeError("the dynamo exporter returned no program")
    program.save(str(path))


ExportFunction = Callable[
    [torch.nn.Module, tuple[torch.Tensor, torch.Tensor], list[TensorSpec], Path], None
]
EXPORTERS: dict[Exporter, ExportFunction] = {"legacy": _export_legacy, "dynamo": _export_dynamo}


def _example_inputs(config: ModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """A right-padded (2, 5) batch of non-pad ids; parity then runs at other shapes."""
    pad_id = config.pad_token_id
    input_ids = torch.zeros((len(EXAMPLE_LENGTHS), max(EXAMPLE_LENGTHS)), dtype=torch.int64)
    attention_mask = torch.zeros_like(input_ids)
    for row, length in enumerate(EXAMPLE_LENGTHS):
        attention_mask[row, :length] = 1
        token_id = (pad_id + 1 + row) % config.vocab_size
        input_ids[row] = torch.where(attention_mask[row] == 1, token_id, pad_id)
    return input_ids, attention_mask


def held_out_sentences(checkpoint: Checkpoint) -> list[str]:
    """The texts of the run's test split."""
    return [example.text for example in held_out_examples(checkpoint)]


def held_out_examples(checkpoint: Checkpoint) -> list[Example]:
    """The run's test split, rebuilt from its recorded data files, cut and split seed."""
    return rebuild_split(checkpoint.record.training, checkpoint.record.labels).test


def build_manifest(
    checkpoint: Checkpoint,
    encoder: TextEncoder,
    parity: ParityRecord,
    model_dir: Path,
    *,
    name: str,
    version: str,
    outputs: list[TensorSpec],
    faithfulness: FaithfulnessRecord | None = None,
    quantization: QuantizationRecord | None = None,
    calibration: CalibrationRecord | None = None,
) -> Manifest:
    """The manifest of a model directory holding model.onnx and tokenizer.json."""
    info = ARCHITECTURES[checkpoint.config.architecture]
    record = checkpoint.record
    return Manifest(
        name=name,
        version=version,
        architecture=checkpoint.config.architecture,
        description=info.description,
        has_attention=info.has_attention,
        labels=record.labels,
        max_tokens=record.max_tokens,
        pad_token_id=encoder.pad_id,
        unk_token_id=encoder.unk_id,
        tokenization=encoder.tokenization,
        special_tokens=encoder.special_tokens,
        inputs=input_specs(),
        outputs=outputs,
        opset=_opset(model_dir / MODEL_FILE),
        metrics=record.metrics,
        training=record.training,
        parity=parity,
        faithfulness=faithfulness,
        quantization=quantization,
        calibration=calibration,
        serving=ServingHints(
            max_batch_size=info.serving_batch_size,
            group_by_length=info.serving_group_by_length,
            spinning=info.serving_spinning,
            batch_per_core=info.serving_batch_per_core,
        ),
        files={file: sha256_file(model_dir / file) for file in (MODEL_FILE, TOKENIZER_FILE)},
        libraries={
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "tokenizers": tokenizers.__version__,
        },
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _opset(path: Path) -> int:
    """The graph's default-domain opset, as written (each exporter has its own)."""
    return next(
        int(entry.version)
        for entry in onnx.load(str(path)).opset_import
        if entry.domain in ("", "ai.onnx")
    )


def _check_run_consistency(checkpoint: Checkpoint, encoder: TextEncoder) -> None:
    """Refuses a run whose tokenizer or labels do not fit its model."""
    config = checkpoint.config
    if encoder.pad_id != config.pad_token_id:
        raise ValueError(
            f"tokenizer pads with id {encoder.pad_id}, the model with {config.pad_token_id}"
        )
    if encoder.vocab_size > config.vocab_size:
        raise ValueError(
            f"tokenizer has {encoder.vocab_size} tokens, the model embeds {config.vocab_size}"
        )
    if len(checkpoint.record.labels) != config.num_labels:
        raise ValueError(
            f"run has {len(checkpoint.record.labels)} labels, the model {config.num_labels}"
        )


@contextlib.contextmanager
def _staging(repository: Path) -> Iterator[Path]:
    """A temporary directory in the repository, removed (with any new repository) on failure."""
    created = not repository.exists()
    repository.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=repository))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the model from a service run as another user
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not any(repository.iterdir()):
            repository.rmdir()


def _move_into_place(staging: Path, target: Path) -> None:
    """Renames the finished directory to `target`, replacing any old version only then."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        staging.rename(target)
        return
    retired = Path(tempfile.mkdtemp(prefix=".retired-", dir=staging.parent))
    target.rename(retired / target.name)
    staging.rename(target)
    shutil.rmtree(retired)
