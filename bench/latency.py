"""ONNX Runtime latency of a model graph: batch 1 and 64, 1 and 2 intra-op threads.

    .venv/bin/python -m bench.latency \\
        fp32=runs/minilm-attention/model.fp32.onnx \\
        int8=model_repository/minilm-attention/1/model.onnx \\
        --tokenizer model_repository/minilm-attention/1/tokenizer.json

Feeds one review sentence of exactly 16 word pieces ([CLS] and [SEP] included), repeated to
the batch size, through a bare InferenceSession (no HTTP, no tokenisation), and prints the
median and 90th percentile per (graph, threads, batch), then writes the table with the
command, machine and date to bench/results/latency.md. Not a test: figures for the docs.
Medians of interleaved rounds, so that a noisy neighbour hits every configuration alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort

from attnserve.artifact.graph import OUTPUT_NAMES
from attnserve.artifact.tokenizer import TextEncoder
from bench.common import command_line, machine

SENTENCE = "The battery life is great but the screen is awful and too dim."
PIECES = 16
RESULTS = Path(__file__).resolve().parent / "results" / "latency.md"


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def feeds(tokenizer: Path, batch: int) -> dict[str, np.ndarray]:
    encoder = TextEncoder.from_file(tokenizer, 256)
    padded = encoder.pad(encoder.encode([SENTENCE]) * batch)
    if padded.input_ids.shape[1] != PIECES:
        raise ValueError(f"the sentence has {padded.input_ids.shape[1]} pieces, not {PIECES}")
    return padded.feeds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("graphs", nargs="+", help="label=path/to/model.onnx")
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=20, help="runs per round at batch 1")
    args = parser.parse_args()
    graphs = dict(item.split("=", 1) for item in args.graphs)
    configs = [
        (label, threads, batch) for label in graphs for threads in (1, 2) for batch in (1, 64)
    ]
    sessions = {
        (label, threads): session(Path(path), threads)
        for label, path in graphs.items()
        for threads in (1, 2)
    }
    inputs = {batch: feeds(args.tokenizer, batch) for batch in (1, 64)}
    times: dict[tuple[str, int, int], list[float]] = {config: [] for config in configs}
    for config in configs:  # warm-up
        label, threads, batch = config
        sessions[label, threads].run(list(OUTPUT_NAMES), inputs[batch])
    for _ in range(args.rounds):
        for config in configs:
            label, threads, batch = config
            repeats = args.repeats if batch == 1 else max(1, args.repeats // 10)
            for _ in range(repeats):
                start = time.perf_counter()
                sessions[label, threads].run(list(OUTPUT_NAMES), inputs[batch])
                times[config].append((time.perf_counter() - start) * 1000)
    lines = [
        "| graph | size | threads | batch | median ms | p90 ms | ms per sentence |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, threads, batch in configs:
        runs = sorted(times[label, threads, batch])
        median = statistics.median(runs)
        p90 = runs[int(0.9 * (len(runs) - 1))]
        size = Path(graphs[label]).stat().st_size / 1e6
        lines.append(
            f"| {label} | {size:.1f} MB | {threads} | {batch} | {median:.2f} | {p90:.2f} "
            f"| {median / batch:.3f} |"
        )
    table = "\n".join(lines)
    print(table)
    # the machine may be shared: its load says how far the absolute figures can be trusted
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"load average (1, 5, 15 min) at the end: {load}")
    command = command_line("bench.latency")
    cpu = machine()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        f"# ONNX Runtime latency, {PIECES}-word-piece sentence\n\n"
        f"command: `{command}`  \n"
        f"machine: {platform.machine()}, {cpu['cpu']} (SIMD: {cpu['simd']}), "
        f"{os.cpu_count()} logical CPUs, {platform.platform()}, "
        f"onnxruntime {ort.__version__}, load average (1, 5, 15 min) at the end {load}  \n"
        f"date: {datetime.now(UTC).isoformat(timespec='seconds')}\n\n{table}\n",
        "utf-8",
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
