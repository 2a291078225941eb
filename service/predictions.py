"""What the core answers for one request's texts: typed and array-shaped, no wire format.

Each transport encodes it once (`service/v1_json.py` for /v1, `service/oip/signature.py`
for /v2), and metrics read its fields.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

# The stages of a prediction, in the order they run.
STAGES = ("tokenize", "queue", "inference", "postprocess")


@dataclass(frozen=True)
class Timings:
    """How long each stage of a prediction took, in milliseconds, in the order they ran."""

    tokenize_ms: float
    queue_ms: float  # waiting in the batcher for a batch to run in
    inference_ms: float  # the batch computing in ONNX Runtime
    postprocess_ms: float

    def stages(self) -> dict[str, float]:
        """Milliseconds by stage name, in the order of `STAGES`."""
        durations = (self.tokenize_ms, self.queue_ms, self.inference_ms, self.postprocess_ms)
        return dict(zip(STAGES, durations, strict=True))

    def plus_postprocess(self, milliseconds: float) -> Timings:
        """These timings with `milliseconds` more postprocessing (encoding the answer)."""
        return replace(self, postprocess_ms=self.postprocess_ms + milliseconds)

    def server_timing(self) -> str:
        """The `Server-Timing` header's value."""
        return (
            f"tokenize;dur={self.tokenize_ms:.3f}, queue;dur={self.queue_ms:.3f}, "
            f"inference;dur={self.inference_ms:.3f}, postprocess;dur={self.postprocess_ms:.3f}"
        )


@dataclass(frozen=True)
class Spans:
    """Character spans of a text's words (or of the pieces the model read), each with its
    attention weight; `weights` is None for a model without attention."""

    spans: list[tuple[int, int]]
    weights: npt.NDArray[np.float32] | None  # (n,)


@dataclass(frozen=True)
class Predictions:
    """One model's answer for a request's texts, in their order."""

    model: str
    version: str
    labels: list[str]  # the columns of `probabilities`
    texts: list[str]
    probabilities: npt.NDArray[np.float32]  # (B, C)
    words: list[Spans]
    truncated: list[bool]
    readable: list[float]  # the share of each text's words the model knows (not unknown)
    timings: Timings
    pieces: list[Spans] | None = None  # with `detail: pieces`
    heads: list[npt.NDArray[np.float32]] | None = None  # with `detail: heads`: (L, h, t, t) each

    @property
    def label_ids(self) -> npt.NDArray[np.intp]:
        """The most probable label of each text (the first, on a tie)."""
        label_ids: npt.NDArray[np.intp] = np.argmax(self.probabilities, axis=1)
        return label_ids

    @property
    def unreadable(self) -> list[bool]:
        """Texts in which the model knew no word: their answer is a guess."""
        return [share == 0.0 for share in self.readable]

    @property
    def token_counts(self) -> list[int]:
        """Tokens (words) of each text the answer is given in."""
        return [len(words.spans) for words in self.words]
