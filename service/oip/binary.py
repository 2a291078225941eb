"""The binary tensor data extension's framing: a JSON object, then the tensors' raw bytes.

`Inference-Header-Content-Length` gives the JSON object's size in bytes; the binary tensors
follow it in the order their JSON objects list them, each `binary_data_size` bytes long.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from attnserve.service.errors import InvalidInferenceRequest

HEADER = "Inference-Header-Content-Length"
_SIZE = re.compile(r"[0-9]{1,19}")
BINARY_MEDIA_TYPE = "application/octet-stream"


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """(the JSON object, the binary tensor data after it) of a request body."""
    if header_length is None:
        return body, b""
    value = header_length.strip(" \t")
    # ASCII digits only, and few of them: int() takes other scripts' digits and any length
    if not _SIZE.fullmatch(value) or int(value) > len(body):
        shown = header_length if len(header_length) <= 40 else header_length[:40] + "..."
        raise InvalidInferenceRequest(
            f"{HEADER} must be the size in bytes of the JSON object at the start of the body "
            f"({len(body)} bytes); it is {shown!r}."
        )
    size = int(value)
    return body[:size], body[size:]


def cut(binary: bytes, sizes: Sequence[tuple[str, int]]) -> dict[str, bytes]:
    """Cuts the binary part into the named tensors' data; the sizes must add up exactly."""
    if sum(size for _, size in sizes) != len(binary):
        listed = ", ".join(f"'{name}' {size}" for name, size in sizes) or "none"
        raise InvalidInferenceRequest(
            f"The binary part of the body has {len(binary)} bytes, but the inputs' "
            f"binary_data_size add up to {sum(size for _, size in sizes)} ({listed})."
        )
    parts = {}
    offset = 0
    for name, size in sizes:
        parts[name] = binary[offset : offset + size]
        offset += size
    return parts


def join_body(header: bytes, binary_parts: Sequence[bytes]) -> tuple[bytes, dict[str, str]]:
    """A response body and its content headers: plain JSON, or JSON then binary tensors."""
    if not binary_parts:
        return header, {"content-type": "application/json"}
    body = header + b"".join(binary_parts)
    return body, {"content-type": BINARY_MEDIA_TYPE, HEADER: str(len(header))}
