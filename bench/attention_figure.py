"""One sentence's attention under every shipped model, side by side: docs/attention.png.

    .venv/bin/python -m bench.attention_figure ["some sentence"]

Reads the shipped repository through the service's own predictor (ONNX Runtime, no torch);
needs matplotlib (the `bench` extra). Prints each model's label and most attended token.
"""

from __future__ import annotations

import argparse
import asyncio
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
    for predictor in registry.served():
        name = predictor.manifest.name
        if not predictor.manifest.has_attention:
            continue
        predictions = asyncio.run(predictor.predict([args.sentence]))
        [words] = predictions.words
        assert words.weights is not None
        weights = words.weights.tolist()
        tokens = [args.sentence[start:end] for start, end in words.spans]
        label_id = int(predictions.label_ids[0])
        label, score = predictions.labels[label_id], float(predictions.probabilities[0, label_id])
        rows.append(weights)
        labels.append(f"{name} → {label} {score:.2f}")
        top = tokens[int(np.argmax(weights))]
        print(f"{name}: {label} ({score:.3f}), most attended {top!r}")
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
