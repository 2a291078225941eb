"""What a protocol client's inference result must hold: the /v1 answer for the same texts, as
the tensors of service/oip/signature.py (shared by the HTTP and the gRPC client's tests)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest


def output_metadata(labels: int) -> list[tuple[str, str, list[int]]]:
    """(name, datatype, shape) of every output, in order, of a model of `labels` labels."""
    return [
        ("label", "BYTES", [-1]),
        ("probabilities", "FP32", [-1, labels]),
        ("attention", "FP32", [-1, -1]),
        ("token_start", "INT64", [-1, -1]),
        ("token_end", "INT64", [-1, -1]),
        ("truncated", "BOOL", [-1]),
        ("readable", "FP32", [-1]),
    ]


def assert_tensors_match_v1(
    result: Any, texts: list[str], v1: list[dict[str, Any]], labels: list[str]
) -> None:
    """`result` is a tritonclient InferResult (HTTP or gRPC): anything with `as_numpy`."""
    length = max(len(prediction["tokens"]) for prediction in v1)
    # The client gives BYTES as bytes from binary data, as str from JSON data.
    labels_out = [x.decode() if isinstance(x, bytes) else x for x in result.as_numpy("label")]
    assert labels_out == [p["label"] for p in v1]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.dtype == np.float32 and probabilities.shape == (len(texts), len(labels))
    for row, (text, prediction) in enumerate(zip(texts, v1, strict=True)):
        assert probabilities[row].tolist() == [prediction["probabilities"][k] for k in labels]
        tokens = prediction["tokens"]
        n = len(tokens)
        attention = result.as_numpy("attention")[row]
        starts = result.as_numpy("token_start")[row]
        ends = result.as_numpy("token_end")[row]
        assert attention.shape == starts.shape == ends.shape == (length,)
        assert attention[:n].tolist() == [token["attention"] for token in tokens]
        assert math.isclose(float(attention.sum()), 1.0, abs_tol=1e-5)
        assert [text[s:e] for s, e in zip(starts[:n], ends[:n], strict=True)] == [
            token["text"] for token in tokens
        ]
        # Padding: zero attention, offsets -1.
        assert attention[n:].tolist() == [0.0] * (length - n)
        assert starts[n:].tolist() == ends[n:].tolist() == [-1] * (length - n)
    assert result.as_numpy("truncated").tolist() == [p["truncated"] for p in v1]
    assert result.as_numpy("readable").tolist() == pytest.approx([p["readable"] for p in v1])
