"""The one declared graph interface: input/output names, types and axes, and the opset.

Every architecture exports these same two inputs and two outputs. String axes are dynamic
in the graph, under the same names the manifest carries; the label axis is fixed.
"""

from __future__ import annotations

from service.manifest import INPUT_NAMES, OUTPUT_NAMES, TensorSpec

OPSET = 17
# the dynamo exporter's oldest opset; and the longest sequence torch.export may assume
DYNAMO_OPSET = 18
MAX_SEQUENCE = 512
BATCH = "batch"
SEQUENCE = "sequence"


def input_specs() -> list[TensorSpec]:
    """The int64 (batch, sequence) inputs, in graph order."""
    return [TensorSpec(name=name, dtype="int64", shape=[BATCH, SEQUENCE]) for name in INPUT_NAMES]


def output_specs(num_labels: int) -> list[TensorSpec]:
    """The float32 outputs, in graph order: probabilities (batch, labels), attention."""
    shapes: dict[str, list[str | int]] = {
        "probabilities": [BATCH, num_labels],
        "attention": [BATCH, SEQUENCE],
    }
    return [TensorSpec(name=name, dtype="float32", shape=shapes[name]) for name in OUTPUT_NAMES]


def dynamic_axes(num_labels: int) -> dict[str, dict[int, str]]:
    """The `dynamic_axes` argument of torch.onnx.export: every named axis of the specs."""
    return {
        spec.name: {index: axis for index, axis in enumerate(spec.shape) if isinstance(axis, str)}
        for spec in [*input_specs(), *output_specs(num_labels)]
    }
