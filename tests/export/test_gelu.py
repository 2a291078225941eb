"""The exact GELU's five operators fused into one: the same answers, fewer operators."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from attnserve.export.gelu import fuse_gelu

WIDTH = 6


def _graph(*, half_first: bool, bias_read_elsewhere: bool, divisor: float) -> onnx.ModelProto:
    """y = gelu(x @ w + b) spelt out as exporters do, with the two multiplications in either
    order; the biased sum may also be a second output."""
    rng = np.random.default_rng(0)
    constants = {
        "w": rng.standard_normal((WIDTH, WIDTH)).astype(np.float32),
        "b": rng.standard_normal(WIDTH).astype(np.float32),
        "root2": np.array(divisor, np.float32),
        "one": np.array(1.0, np.float32),
        "half": np.array(0.5, np.float32),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["product"]),
        helper.make_node("Add", ["product", "b"], ["biased"]),
        helper.make_node("Div", ["biased", "root2"], ["scaled"]),
        helper.make_node("Erf", ["scaled"], ["erf"]),
        helper.make_node("Add", ["erf", "one"], ["erf_plus_one"]),
    ]
    if half_first:  # x * (0.5 * (1 + erf)), as the dynamo exporter writes it
        nodes += [
            helper.make_node("Mul", ["half", "erf_plus_one"], ["halved"]),
            helper.make_node("Mul", ["biased", "halved"], ["y"]),
        ]
    else:  # (x * (1 + erf)) * 0.5
        nodes += [
            helper.make_node("Mul", ["biased", "erf_plus_one"], ["unhalved"]),
            helper.make_node("Mul", ["unhalved", "half"], ["y"]),
        ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", WIDTH])]
    if bias_read_elsewhere:
        outputs.append(helper.make_tensor_value_info("biased", TensorProto.FLOAT, ["batch", WIDTH]))
    graph = helper.make_graph(
        nodes,
        "gelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", WIDTH])],
        outputs,
        [numpy_helper.from_array(value, name) for name, value in constants.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})  # type: ignore[no-any-return]


def _operators(model: onnx.ModelProto) -> Counter[str]:
    return Counter(node.op_type for node in model.graph.node)


@pytest.mark.parametrize("half_first", [True, False])
@pytest.mark.parametrize(
    ("bias_read_elsewhere", "fused_operator"), [(False, "BiasGelu"), (True, "Gelu")]
)
def test_the_exact_gelu_becomes_one_operator_with_the_same_answers(
    half_first: bool, bias_read_elsewhere: bool, fused_operator: str
) -> None:
    model = _graph(
        half_first=half_first, bias_read_elsewhere=bias_read_elsewhere, divisor=math.sqrt(2)
    )
    x = np.random.default_rng(1).standard_normal((5, WIDTH)).astype(np.float32) * 3
    expected = _run(model, x)

    assert fuse_gelu(model) == 1

    onnx.checker.check_model(model)
    operators = _operators(model)
    assert operators[fused_operator] == 1
    assert not {"Div", "Erf", "Mul"} & set(operators)
    assert {tensor.name for tensor in model.graph.initializer} == {"w", "b"}
    for ours, theirs in zip(_run(model, x), expected, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


def test_a_pattern_that_is_not_the_exact_gelu_is_left_alone() -> None:
    model = _graph(half_first=True, bias_read_elsewhere=False, divisor=2.0)
    before = _operators(model)

    assert fuse_gelu(model) == 0
    assert _operators(model) == before
