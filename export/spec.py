"""The one declared graph interface: input/output names, types and axes, and the opset.

Every architecture exports these same two inputs and two outputs; a model with per-layer,
per-head self-attention maps adds the optional third output `heads` (layers, heads, sequence,
sequence), which the service reads only when a request asks for it. String axes are dynamic
in the graph, under the same names the manifest carries; the other axes are fixed.
"""

from __future__ import annotations

from attnserve.artifact.graph import HEADS_OUTPUT, INPUT_NAMES, OUTPUT_NAMES
from attnserve.artifact.manifest import TensorSpec

OPSET = 17  # the legacy exporter's; the dynamo exporter writes its own (>= 18)
# the longest sequence torch.export may assume (a pretrained encoder's position embeddings)
MAX_SEQUENCE = 512
BATCH = "batch"
SEQUENCE = "sequence"


def input_specs() -> list[TensorSpec]:
    """The int64 (batch, sequence) inputs, in graph order."""
    return [TensorSpec(name=name, dtype="int64", shape=[BATCH, SEQUENCE]) for name in INPUT_NAMES]


def output_specs(num_labels: int, heads: tuple[int, int] | None = None) -> list[TensorSpec]:
    """The float32 outputs, in graph order: probabilities (batch, labels), attention, and
    with `heads` = (layers, heads) the self-attention maps."""
    shapes: dict[str, list[str | int]] = {
        "probabilities": [BATCH, num_labels],
        "attention": [BATCH, SEQUENCE],
    }
    specs = [TensorSpec(name=name, dtype="float32", shape=shapes[name]) for name in OUTPUT_NAMES]
    if heads is not None:
        shape: list[str | int] = [BATCH, *heads, SEQUENCE, SEQUENCE]
        specs.append(TensorSpec(name=HEADS_OUTPUT, dtype="float32", shape=shape))
    return specs


def dynamic_axes(outputs: list[TensorSpec]) -> dict[str, dict[int, str]]:
    """The `dynamic_axes` argument of torch.onnx.export: every named axis of the specs."""
    return {
        spec.name: {index: axis for index, axis in enumerate(spec.shape) if isinstance(axis, str)}
        for spec in [*input_specs(), *outputs]
    }
