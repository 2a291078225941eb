"""An exported graph run over encoded texts in padded batches, as export's checks need it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from attnserve.artifact.graph import OUTPUT_NAMES
from attnserve.artifact.tokenizer import EncodedText, TextEncoder
from attnserve.service.providers import CPU, SessionConfig

# The service's own session options: what export measures (int8 accuracy, the temperature) is
# computed as the served answers are, whatever int8 instructions the CPU has.
SERVED = SessionConfig(providers=(CPU,), exact=True)

BATCH_SIZE = 64


def run_graph(
    path: Path, encoder: TextEncoder, encoded: list[EncodedText]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(probabilities (N, C), attention (N, T_max)) over every text, in batches."""
    session = SERVED.open_session(path)
    probabilities, attention = [], []
    width = max(len(item.ids) for item in encoded)
    for start in range(0, len(encoded), BATCH_SIZE):
        batch = encoder.pad(encoded[start : start + BATCH_SIZE])
        probs, weights = session.run(list(OUTPUT_NAMES), batch.feeds())
        probabilities.append(probs)
        attention.append(np.pad(weights, ((0, 0), (0, width - weights.shape[1]))))
    return np.concatenate(probabilities), np.concatenate(attention)
