"""The pretrained encoder's graph, built every way we considered serving it, measured side by
side: test accuracy, whether a text's answer depends on its batch, latency and size.

    HF_HUB_OFFLINE=1 python -m bench.encoder_variants runs/minilm-attention

From the run's checkpoint: the fp32 graph of each exporter (dynamo, the declared one; legacy
TorchScript), ONNX Runtime's transformer optimiser on each (BERT fusions; the fused operators
it made are printed), dynamic int8 (activation ranges measured per batch) and static int8
(ranges calibrated once on the training split, what `attnserve export --int8` ships), static
int8 of the fused graph. Latency: one ONNX Runtime thread, the median-length test sentence
alone and 32 test sentences padded together, rounds interleaved across graphs; min and median
per graph (on a shared machine the min is the steadier figure). Writes
bench/results/encoder_variants.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

from attnserve.artifact.data import label_ids
from attnserve.artifact.graph import OUTPUT_NAMES
from attnserve.artifact.split import rebuild_split
from attnserve.artifact.tokenizer import TextEncoder
from attnserve.export.graph import graph_module, graph_outputs
from attnserve.export.onnx_export import export_onnx
from attnserve.export.optimize import fuse_transformer
from attnserve.export.quantize import quantize_int8
from attnserve.models.checkpoint import load_checkpoint
from bench.common import RESULTS

HEADS, HIDDEN = 12, 384  # all-MiniLM-L6-v2
COMPANIONS = 16


def build(run_dir: Path, scratch: Path) -> tuple[dict[str, Path], list[str]]:
    """Every variant's graph file, by name, and what the transformer optimiser fused."""
    checkpoint = load_checkpoint(run_dir)
    model = graph_module(checkpoint.model)
    outputs = graph_outputs(checkpoint.model)
    encoder = TextEncoder.from_file(checkpoint.tokenizer_path, checkpoint.record.max_tokens)
    split = rebuild_split(checkpoint.record.training, checkpoint.record.labels)
    train = [example.text for example in split.train]
    graphs: dict[str, Path] = {}
    fusions: list[str] = []
    for exporter in ("dynamo", "legacy"):
        fp32 = graphs[f"fp32 ({exporter})"] = scratch / f"{exporter}.onnx"
        export_onnx(model, checkpoint.config, outputs, fp32, exporter=exporter)
        fused = graphs[f"fp32 fused ({exporter})"] = scratch / f"{exporter}-fused.onnx"
        fused_operators = fuse_transformer(fp32, fused, heads=HEADS, hidden=HIDDEN)
        fusions.append(
            f"- {exporter} export: "
            + ", ".join(f"{count} {operator}" for operator, count in fused_operators.items())
        )
    dynamo = graphs["fp32 (dynamo)"]
    graphs["int8 dynamic (dynamo)"] = scratch / "dynamic.onnx"
    quantize_dynamic(
        str(dynamo),
        str(graphs["int8 dynamic (dynamo)"]),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        per_channel=True,
    )
    graphs["int8 static (dynamo)"] = scratch / "static.onnx"
    quantize_int8(dynamo, graphs["int8 static (dynamo)"], encoder, train)
    graphs["int8 static (legacy, fused)"] = scratch / "fused-static.onnx"
    quantize_int8(
        graphs["fp32 fused (legacy)"], graphs["int8 static (legacy, fused)"], encoder, train
    )
    return graphs, fusions


def measure(run_dir: Path, graphs: dict[str, Path], rounds: int) -> list[str]:
    checkpoint = load_checkpoint(run_dir)
    encoder = TextEncoder.from_file(checkpoint.tokenizer_path, checkpoint.record.max_tokens)
    test = rebuild_split(checkpoint.record.training, checkpoint.record.labels).test
    items = encoder.encode([example.text for example in test])
    labels = np.array(label_ids(test, checkpoint.record.labels))
    median = sorted(items, key=lambda item: len(item.ids))[len(items) // 2]
    one, many = encoder.pad([median]).feeds(), encoder.pad(items[:32]).feeds()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sessions = {
        name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for name, path in graphs.items()
    }
    order = np.random.default_rng(0).permutation(len(items))
    quality = {}
    for name, session in sessions.items():

        def run(rows: list[int], session: ort.InferenceSession = session) -> np.ndarray:
            feeds = encoder.pad([items[i] for i in rows]).feeds()
            probabilities: np.ndarray = session.run([OUTPUT_NAMES[0]], feeds)[0]
            return probabilities

        alone = np.concatenate([run([i]) for i in range(len(items))])
        batched = np.zeros_like(alone)
        for start in range(0, len(order), COMPANIONS):
            rows = order[start : start + COMPANIONS].tolist()
            batched[rows] = run(rows)
        quality[name] = (
            float((alone.argmax(1) == labels).mean()),
            float(np.abs(batched - alone).max()),
        )
    single: dict[str, list[float]] = {name: [] for name in sessions}
    batch: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, session in sessions.items():
            for _ in range(25):
                began = time.perf_counter()
                session.run(None, one)
                single[name].append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            session.run(None, many)
            batch[name].append((time.perf_counter() - began) * 1000)
    lines = [
        f"Median-length test sentence: {len(median.ids)} word pieces; batch: 32 test sentences "
        f"padded to {many['input_ids'].shape[1]}; {rounds} rounds; one ONNX Runtime thread.",
        "",
        "| graph | test accuracy | max abs diff, alone vs in a batch | batch 1 ms (min, median) "
        "| batch 32 ms (min, median) | MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, path in graphs.items():
        accuracy, diff = quality[name]
        lines.append(
            f"| {name} | {accuracy:.3f} | {diff:.1e} | {min(single[name]):.2f}, "
            f"{statistics.median(single[name]):.2f} | {min(batch[name]):.1f}, "
            f"{statistics.median(batch[name]):.1f} | {path.stat().st_size / 1e6:.1f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="encoder-variants-") as scratch:
        graphs, fusions = build(args.run_dir, Path(scratch))
        lines = measure(args.run_dir, graphs, args.rounds)
    text = "\n".join(
        [
            "# Encoder graph variants (`python -m bench.encoder_variants`)",
            "",
            "Operators ONNX Runtime's transformer optimiser fused (BERT, 12 heads, 384 wide):",
            "",
            *fusions,
            "",
            *lines,
            "",
        ]
    )
    (RESULTS / "encoder_variants.md").write_text(text, "utf-8")
    print(text)


if __name__ == "__main__":
    main()
