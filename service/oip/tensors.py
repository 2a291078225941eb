"""Tensor data in the protocol's two encodings: JSON lists, and the binary tensor data
extension's raw bytes (little-endian, row-major; BYTES elements each preceded by their
length as a 4-byte little-endian unsigned integer; BOOL as one byte)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from attnserve.service.errors import InvalidInferenceRequest

# The datatypes attnserve answers with, and their little-endian numpy types.
NUMPY_TYPES: dict[str, str] = {"BOOL": "|b1", "INT64": "<i8", "FP32": "<f4"}
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class Tensor:
    """An output tensor: numeric data as an array, BYTES data as a list of strings."""

    name: str
    datatype: str
    shape: list[int]
    data: npt.NDArray[Any] | list[str]

    def json_data(self) -> list[Any]:
        """The elements, flattened in row-major order."""
        if isinstance(self.data, list):
            return list(self.data)
        flat: list[Any] = self.data.ravel().tolist()
        return flat

    def binary_data(self) -> bytes:
        if isinstance(self.data, list):
            return serialize_bytes([text.encode("utf-8") for text in self.data])
        return np.ascontiguousarray(self.data, dtype=NUMPY_TYPES[self.datatype]).tobytes()


def serialize_bytes(elements: list[bytes]) -> bytes:
    return b"".join(_LENGTH.pack(len(element)) + element for element in elements)


def deserialize_bytes(raw: bytes, name: str) -> list[bytes]:
    """The elements of a BYTES tensor sent in binary."""
    elements = []
    offset = 0
    while offset < len(raw):
        if offset + _LENGTH.size > len(raw):
            raise InvalidInferenceRequest(
                f"Input '{name}': binary BYTES data ends inside an element's 4-byte length."
            )
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += _LENGTH.size
        if offset + length > len(raw):
            raise InvalidInferenceRequest(
                f"Input '{name}': a BYTES element of {length} bytes runs past the end of "
                f"its binary data ({len(raw) - offset} bytes left)."
            )
        elements.append(raw[offset : offset + length])
        offset += length
    return elements


def flatten_json(data: list[Any]) -> list[Any]:
    """Tensor data may be nested or flat; its elements in row-major order either way."""
    flat: list[Any] = []
    for item in data:
        if isinstance(item, list):
            flat.extend(flatten_json(item))
        else:
            flat.append(item)
    return flat
