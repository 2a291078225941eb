"""What every attnserve model looks like on the protocol: one BYTES input of texts, and
outputs built from the predictor's typed answer.

    text         BYTES [B]     (or [B, 1]) UTF-8 texts
    label        BYTES [B]     the most probable label
    probabilities FP32 [B, C]  columns in the order of the model's labels
    attention    FP32  [B, T]  per-token weights, 0 on padding (models with attention only)
    token_start  INT64 [B, T]  each token's first character in its text, -1 on padding
    token_end    INT64 [B, T]  one past its last character, -1 on padding
    truncated    BOOL  [B]     the text had more than max_tokens tokens

T is the most tokens of any text in the request; offsets count characters (Unicode code
points), so `text[token_start:token_end]` is the token in Python.
"""

from __future__ import annotations

import numpy as np

from attnserve.service.oip.schemas import MetadataTensor
from attnserve.service.oip.tensors import Tensor
from attnserve.service.schemas import PredictResponse

INPUT_NAME = "text"
PLATFORM = "onnxruntime_onnx"
PAD_OFFSET = -1


def input_tensor() -> MetadataTensor:
    return MetadataTensor(name=INPUT_NAME, datatype="BYTES", shape=[-1])


def output_tensors(labels: list[str], has_attention: bool) -> list[MetadataTensor]:
    outputs = [
        MetadataTensor(name="label", datatype="BYTES", shape=[-1]),
        MetadataTensor(name="probabilities", datatype="FP32", shape=[-1, len(labels)]),
        MetadataTensor(name="attention", datatype="FP32", shape=[-1, -1]),
        MetadataTensor(name="token_start", datatype="INT64", shape=[-1, -1]),
        MetadataTensor(name="token_end", datatype="INT64", shape=[-1, -1]),
        MetadataTensor(name="truncated", datatype="BOOL", shape=[-1]),
    ]
    return [output for output in outputs if has_attention or output.name != "attention"]


def to_tensors(response: PredictResponse, labels: list[str], has_attention: bool) -> list[Tensor]:
    """The predictions as the tensors `output_tensors` declares, in the same order."""
    predictions = response.predictions
    rows = len(predictions)
    length = max(len(prediction.tokens) for prediction in predictions)
    attention = np.zeros((rows, length), dtype=np.float32)
    starts = np.full((rows, length), PAD_OFFSET, dtype=np.int64)
    ends = np.full((rows, length), PAD_OFFSET, dtype=np.int64)
    for row, prediction in enumerate(predictions):
        for column, token in enumerate(prediction.tokens):
            attention[row, column] = token.attention or 0.0
            starts[row, column] = token.start
            ends[row, column] = token.end
    probabilities = np.array(
        [[prediction.probabilities[label] for label in labels] for prediction in predictions],
        dtype=np.float32,
    )
    tensors = [
        Tensor("label", "BYTES", [rows], [prediction.label for prediction in predictions]),
        Tensor("probabilities", "FP32", [rows, len(labels)], probabilities),
        Tensor("attention", "FP32", [rows, length], attention),
        Tensor("token_start", "INT64", [rows, length], starts),
        Tensor("token_end", "INT64", [rows, length], ends),
        Tensor("truncated", "BOOL", [rows], np.array([p.truncated for p in predictions])),
    ]
    return [tensor for tensor in tensors if has_attention or tensor.name != "attention"]
