"""ONNX Runtime, as the service imports it: with its telemetry off.

The library sends usage events (a DNS look-up for a telemetry host seconds after start) and
writes a growing database under `$HOME/.cache/Microsoft/DeveloperTools/.onnxruntime`, unless
`ORT_DISABLE_TELEMETRY` is set when it loads. Every module of the service imports it from
here, so it is set first; an operator's own value wins.
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import onnxruntime

__all__ = ["onnxruntime"]
