"""PyTorch vs ONNX Runtime on real sentences, at batch and length shapes unlike the export's.

Fails hard: any output over tolerance at any shape raises ParityError with every figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import torch

from attnserve.artifact.graph import OUTPUT_NAMES, PaddedBatch
from attnserve.artifact.manifest import ParityRecord
from attnserve.artifact.tokenizer import EncodedText, TextEncoder

# (batch size, share of the sentences sorted by length it draws from), so that batches
# differ in length and in how much padding each row gets
BATCHES = ((1, 1.0), (3, 0.3), (8, 0.6), (17, 1.0))
LONG_BATCH_SIZE = 4


@dataclass(frozen=True)
class OutputMismatch:
    """One output at one (batch, length) shape that ONNX Runtime got wrong."""

    output: str
    batch_shape: tuple[int, int]
    max_abs_diff: float
    tolerance: float
    torch_shape: tuple[int, ...]
    onnx_shape: tuple[int, ...]

    def describe(self) -> str:
        batch, length = self.batch_shape
        return (
            f"{self.output} at (batch={batch}, length={length}): "
            f"max |torch - onnx| = {self.max_abs_diff:.3e}, tolerance {self.tolerance:.1e}, "
            f"torch shape {self.torch_shape}, onnx shape {self.onnx_shape}"
        )


class ParityError(RuntimeError):
    """The ONNX graph disagrees with the PyTorch model; the message lists every miss."""

    def __init__(self, mismatches: list[OutputMismatch]) -> None:
        self.mismatches = mismatches
        lines = "\n".join(f"  {mismatch.describe()}" for mismatch in mismatches)
        count = len(mismatches)
        super().__init__(f"ONNX Runtime disagrees with PyTorch in {count} case(s):\n{lines}")


def parity_batches(encoder: TextEncoder, sentences: list[str]) -> list[PaddedBatch]:
    """Batches of 1, 3, 8 and 17 mixing short and long sentences, and one overlong row."""
    encoded = sorted(
        (item for item in encoder.encode(sentences) if item.ids), key=lambda item: len(item.ids)
    )
    if not encoded:
        raise ValueError("parity needs at least one sentence with a token")
    batches = [
        encoder.pad(_spread(encoded[: max(1, round(reach * len(encoded)))], size))
        for size, reach in BATCHES
    ]
    # a row longer than any single sentence, padded against short ones
    joined = encoder.encode([" ".join(sentences)])
    batches.append(encoder.pad(joined + encoded[: LONG_BATCH_SIZE - 1]))
    return batches


def _spread(encoded: list[EncodedText], size: int) -> list[EncodedText]:
    """`size` items evenly spaced from shortest to longest (repeating when too few); 1: median."""
    if size == 1:
        return [encoded[len(encoded) // 2]]
    positions = np.linspace(0, len(encoded) - 1, size).round().astype(int)
    return [encoded[position] for position in positions]


def check_parity(
    model: torch.nn.Module,
    onnx_path: Path,
    encoder: TextEncoder,
    sentences: list[str],
    *,
    tolerance: float = 1e-4,
    output_names: Sequence[str] = OUTPUT_NAMES,
) -> ParityRecord:
    """Runs both on every parity batch; raises ParityError on any output over tolerance.

    `model` returns the outputs named `output_names`, in that order."""
    if model.training:
        raise ValueError("parity needs the model in eval mode (dropout off)")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    max_abs_diff = dict.fromkeys(output_names, 0.0)
    mismatches: list[OutputMismatch] = []
    shapes: list[tuple[int, int]] = []
    for batch in parity_batches(encoder, sentences):
        batch_shape = (int(batch.input_ids.shape[0]), int(batch.input_ids.shape[1]))
        shapes.append(batch_shape)
        expected = _run_torch(model, batch)
        actual = session.run(list(output_names), batch.feeds())
        for name, torch_out, onnx_out in zip(output_names, expected, actual, strict=True):
            diff = _max_abs_diff(torch_out, onnx_out)
            max_abs_diff[name] = max(max_abs_diff[name], diff)
            # written so that NaN counts as a miss
            if torch_out.shape != onnx_out.shape or not diff <= tolerance:
                mismatches.append(
                    OutputMismatch(
                        output=name,
                        batch_shape=batch_shape,
                        max_abs_diff=diff,
                        tolerance=tolerance,
                        torch_shape=tuple(torch_out.shape),
                        onnx_shape=tuple(onnx_out.shape),
                    )
                )
    if mismatches:
        raise ParityError(mismatches)
    return ParityRecord(tolerance=tolerance, max_abs_diff=max_abs_diff, shapes=shapes)


@torch.no_grad()
def _run_torch(model: torch.nn.Module, batch: PaddedBatch) -> list[npt.NDArray[np.float32]]:
    outputs = model(torch.from_numpy(batch.input_ids), torch.from_numpy(batch.attention_mask))
    return [output.numpy() for output in outputs]


def _max_abs_diff(expected: npt.NDArray[np.float32], actual: npt.NDArray[np.float32]) -> float:
    if expected.shape != actual.shape:
        return float("inf")
    return float(np.max(np.abs(expected - actual)))
