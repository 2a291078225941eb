"""One sentence's attention under every shipped model, side by side: docs/attention.png.

    .venv/bin/python -m bench.attention_figure ["some sentence"]

Reads the shipped repository through the service's own predictor (ONNX Runtime, no torch);
needs matplotlib (the `bench` extra). Prints each model's label and most attended token.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import numpy.typing as npt

from attnserve.service.registry import ModelRegistry
from attnserve.service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SENTENCE = "The battery life is great but the screen is awful"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sentence", nargs="?", default=SENTENCE)
    parser.add_argument("--out", type=Path, default=ROOT / "docs/attention.png")
    args = parser.parse_args()

    registry = ModelRegistry.load(Settings(providers="cpu"))
    rows, labels, tokens = [], [], []
    for name in registry.names:
        predictor = registry.get(name)
        if not predictor.manifest.has_attention:
            continue
        [prediction] = predictor.predict_sync([args.sentence]).response.predictions
        weights = [token.attention or 0.0 for token in prediction.tokens]
        tokens = [token.text for token in prediction.tokens]
        rows.append(weights)
        labels.append(f"{name} → {prediction.label} {prediction.score:.2f}")
        top = tokens[int(np.argmax(weights))]
        print(f"{name}: {prediction.label} ({prediction.score:.3f}), most attended {top!r}")
    plot(args.out, np.array(rows), labels, tokens)
    print(f"wrote {args.out}")


def plot(
    path: Path, weights: npt.NDArray[np.float64], labels: list[str], tokens: list[str]
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(1.0 + 0.8 * len(tokens), 0.9 + 0.45 * len(labels)))
    image = axes.imshow(weights, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(len(tokens)), tokens, rotation=30, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    for row in range(weights.shape[0]):
        for column in range(weights.shape[1]):
            value = weights[row, column]
            color = "white" if value > 0.5 else "black"
            axes.text(
                column, row, f"{value:.2f}", ha="center", va="center", fontsize=7, color=color
            )
    figure.colorbar(image, ax=axes, label="attention weight")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
