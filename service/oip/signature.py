"""What every attnserve model looks like on the protocol: one BYTES input of texts, and
outputs built straight from the predictor's arrays.

    text         BYTES [B]     (or [B, 1]) UTF-8 texts
    label        BYTES [B]     the most probable label
    probabilities FP32 [B, C]  columns in the order of the model's labels
    attention    FP32  [B, T]  per-token weights, 0 on padding (models with attention only)
    token_start  INT64 [B, T]  each token's first character in its text, -1 on padding
    token_end    INT64 [B, T]  one past its last character, -1 on padding
    truncated    BOOL  [B]     the text had more than max_tokens tokens
    readable     FP32  [B]     the share of the text's words the model knows (0: unreadable)

T is the most tokens of any text in the request; offsets count characters (Unicode code
points), so `text[token_start:token_end]` is the token in Python.
"""

from __future__ import annotations

import numpy as np

from attnserve.service.oip.schemas import MetadataTensor
from attnserve.service.oip.tensors import Tensor
from attnserve.service.predictions import Predictions

INPUT_NAME = "text"
PLATFORM = "onnxruntime_onnx"
PAD_OFFSET = -1
_OUTPUT_NAMES = (
    "label",
    "probabilities",
    "attention",
    "token_start",
    "token_end",
    "truncated",
    "readable",
)
_OUTPUT_NAMES_WITHOUT_ATTENTION = tuple(name for name in _OUTPUT_NAMES if name != "attention")


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
        MetadataTensor(name="readable", datatype="FP32", shape=[-1]),
    ]
    return [output for output in outputs if has_attention or output.name != "attention"]


def output_names(has_attention: bool) -> list[str]:
    """The names `output_tensors` declares, in order (without building them: on every call)."""
    return list(_OUTPUT_NAMES if has_attention else _OUTPUT_NAMES_WITHOUT_ATTENTION)


def to_tensors(predictions: Predictions, has_attention: bool) -> list[Tensor]:
    """The predictions as the tensors `output_tensors` declares, in the same order."""
    rows = len(predictions.texts)
    length = max(predictions.token_counts)
    attention = np.zeros((rows, length), dtype=np.float32)
    starts = np.full((rows, length), PAD_OFFSET, dtype=np.int64)
    ends = np.full((rows, length), PAD_OFFSET, dtype=np.int64)
    for row, words in enumerate(predictions.words):
        count = len(words.spans)
        if count:
            spans = np.asarray(words.spans, dtype=np.int64)  # (n, 2)
            starts[row, :count] = spans[:, 0]
            ends[row, :count] = spans[:, 1]
        if words.weights is not None:
            attention[row, :count] = words.weights
    labels = predictions.labels
    tensors = [
        Tensor("label", "BYTES", [rows], [labels[i] for i in predictions.label_ids.tolist()]),
        Tensor("probabilities", "FP32", [rows, len(labels)], predictions.probabilities),
        Tensor("attention", "FP32", [rows, length], attention),
        Tensor("token_start", "INT64", [rows, length], starts),
        Tensor("token_end", "INT64", [rows, length], ends),
        Tensor("truncated", "BOOL", [rows], np.array(predictions.truncated, dtype=bool)),
        Tensor("readable", "FP32", [rows], np.array(predictions.readable, dtype=np.float32)),
    ]
    return [tensor for tensor in tensors if has_attention or tensor.name != "attention"]
