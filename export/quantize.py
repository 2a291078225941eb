"""ONNX Runtime static int8 quantisation, and the fail-hard check of int8 against fp32.

`quantize_int8` rewrites an fp32 graph's MatMuls in int8 (QDQ): weights per output channel,
activations with ranges measured once on calibration texts (the training split). Dynamic
quantisation, which measures each activation's range on the batch at hand, made a text's
answer depend on what it was batched with (probabilities up to 0.3 apart); static ranges make
every row's arithmetic its own. `compare_int8` runs both graphs on labelled held-out texts and
raises QuantizationError when the int8 graph loses more than `max_accuracy_drop` accuracy or
changes more than 1 - `min_agreement` of the labels.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from attnserve.artifact.graph import OUTPUT_NAMES
from attnserve.artifact.manifest import QuantizationRecord
from attnserve.artifact.tokenizer import TextEncoder
from attnserve.export.graph_run import run_graph

METHOD = (
    "ONNX Runtime static quantisation of MatMul (QDQ): int8 weights (QInt8, per channel), "
    "uint8 activations with min-max ranges calibrated on the training split; embeddings "
    "stay fp32"
)


class QuantizationError(RuntimeError):
    """The int8 graph is too far from the fp32 one; the message gives the figures."""


class _OneTextAtATime(CalibrationDataReader):  # type: ignore[misc]
    """The calibration texts' feeds, one unpadded text per run: padding never sets a range."""

    def __init__(self, encoder: TextEncoder, texts: Sequence[str]) -> None:
        self._feeds = (
            encoder.pad([item]).feeds() for item in encoder.encode(list(texts)) if item.ids
        )

    def get_next(self) -> dict[str, npt.NDArray[np.int64]] | None:
        return next(self._feeds, None)


def quantize_int8(
    fp32_path: Path, int8_path: Path, encoder: TextEncoder, calibration_texts: Sequence[str]
) -> None:
    """Writes `int8_path`: `fp32_path` with its MatMuls quantised statically (QDQ): int8 weights
    per output channel, uint8 activations whose ranges (min and max) were measured once on
    `calibration_texts`, run one at a time."""
    fp32_path, int8_path = fp32_path.resolve(), int8_path.resolve()
    # both steps leave temporary files in the working directory: give them a scratch one
    with tempfile.TemporaryDirectory(prefix="quantize-") as scratch, contextlib.chdir(scratch):
        prepared = Path(scratch) / "prepared.onnx"
        # without this pass parts of a dynamo graph silently stay fp32; its symbolic shape
        # inference fails on dynamo graphs, ONNX's own shape inference is enough here
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        # MatMuls only: the 47 MB embedding table (Gather) stays fp32, since quantising it
        # changed 3 of the 200 test labels of the first shipped model
        quantize_static(
            str(prepared),
            str(int8_path),
            _OneTextAtATime(encoder, calibration_texts),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )


def compare_int8(
    fp32_path: Path,
    int8_path: Path,
    encoder: TextEncoder,
    texts: Sequence[str],
    labels: Sequence[int],
    *,
    max_accuracy_drop: float = 0.005,
    min_agreement: float = 0.99,
) -> QuantizationRecord:
    """Both graphs on labelled texts; raises QuantizationError past either bound."""
    encoded = [item for item in encoder.encode(list(texts)) if item.ids]
    if len(encoded) != len(texts):
        raise ValueError(f"{len(texts) - len(encoded)} text(s) have no tokens")
    fp32 = run_graph(fp32_path, encoder, encoded)
    int8 = run_graph(int8_path, encoder, encoded)
    truth = np.asarray(labels)
    fp32_labels, int8_labels = fp32[0].argmax(axis=1), int8[0].argmax(axis=1)
    record = QuantizationRecord(
        method=METHOD,
        fp32_bytes=fp32_path.stat().st_size,
        int8_bytes=int8_path.stat().st_size,
        fp32_test_accuracy=float((fp32_labels == truth).mean()),
        int8_test_accuracy=float((int8_labels == truth).mean()),
        agreement=float((fp32_labels == int8_labels).mean()),
        max_abs_diff={
            name: float(np.max(np.abs(a - b)))
            for name, a, b in zip(OUTPUT_NAMES, fp32, int8, strict=True)
        },
        test_examples=len(encoded),
    )
    drop = record.fp32_test_accuracy - record.int8_test_accuracy
    problems = []
    if drop > max_accuracy_drop:
        problems.append(
            f"int8 accuracy {record.int8_test_accuracy:.4f} is {drop:.4f} below fp32's "
            f"{record.fp32_test_accuracy:.4f} (at most {max_accuracy_drop:.4f} allowed)"
        )
    if record.agreement < min_agreement:
        problems.append(
            f"int8 and fp32 agree on {record.agreement:.4f} of {len(encoded)} texts "
            f"(at least {min_agreement:.4f} required)"
        )
    if problems:
        raise QuantizationError("; ".join(problems))
    return record
