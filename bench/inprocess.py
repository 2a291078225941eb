"""In-process: ONNX Runtime against PyTorch eager, same model, same input.

    .venv/bin/python -m bench.inprocess [--reps 30]

Each side runs on one thread (see THREADS). Batches of real sentences (1, 8, 64, 256;
padded to their longest), then latency against
text length (8 to 512 tokens, batch 1) and against batch size (1 to 256). Every figure is the
median of `reps` timed calls after a warm-up. Prints them, writes bench/results/inprocess.json
and the plots bench/results/latency_by_length.png and latency_by_batch.png. Needs the train
extra (PyTorch) and the trained run (trained if absent). Beside the shipped graph it times the
graph `attnserve export --optimize extended` would save (ONNX Runtime's offline optimisation)
and the model quantised to dynamic int8 (`attnserve export --int8`), both made into
temporary files, and how long each takes to open as a session. Every graph is opened with the
service's session options.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from attnserve.artifact.graph import PaddedBatch
from attnserve.artifact.manifest import TOKENIZER_FILE, Manifest
from attnserve.artifact.split import rebuild_split
from attnserve.artifact.tokenizer import TextEncoder
from attnserve.service.inference import SessionRunner
from attnserve.service.loading import load_artifact
from attnserve.service.providers import CPU, SessionConfig
from bench.common import (
    DEFAULT_MODEL_DIR,
    DEFAULT_RUN_DIR,
    RESULTS,
    command_line,
    ensure_run,
    machine,
    sentences,
)

BATCHES = (1, 8, 64, 256)
LENGTHS = (8, 16, 32, 64, 128, 256, 512)
BATCH_SWEEP = (1, 2, 4, 8, 16, 32, 64, 128, 256)

Ids = npt.NDArray[np.int64]
Run = Callable[[Ids, Ids], Any]


def median_ms(call: Callable[[], Any], reps: int) -> float:
    for _ in range(3):
        call()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


def time_each(runners: dict[str, Run], ids: Ids, mask: Ids, reps: int) -> dict[str, float]:
    """Median ms of each runner on the same input, the runners taking turns."""
    return {name: median_ms(lambda run=run: run(ids, mask), reps) for name, run in runners.items()}  # type: ignore[misc]


# One thread each: on a shared 2-core machine, multi-threaded timings measure the other
# tenants (PyTorch's spinning OpenMP threads suffer most), not the libraries.
THREADS = 1


SESSION_CONFIG = SessionConfig(providers=(CPU,), exact=True, intra_op_threads=THREADS)


def open_session(model_path: Path) -> ort.InferenceSession:
    """A session on `model_path` with the options the service gives its sessions."""
    return SESSION_CONFIG.open_session(model_path)


def session_runner(model_path: Path) -> Run:
    session = open_session(model_path)
    runner = SessionRunner(session)
    return lambda ids, mask: runner.compute(PaddedBatch(input_ids=ids, attention_mask=mask))


def int8_graph(model_dir: Path) -> Path:
    """The graph `attnserve export --int8` would ship for the model (static int8, calibrated
    on its training split)."""
    from attnserve.export.quantize import quantize_int8

    manifest = Manifest.read(model_dir)
    encoder = TextEncoder.from_file(model_dir / TOKENIZER_FILE, manifest.max_tokens)
    train = rebuild_split(manifest.training, manifest.labels).train
    int8_path = Path(tempfile.mkdtemp(prefix="bench-int8-")) / "model.onnx"
    quantize_int8(model_dir / "model.onnx", int8_path, encoder, [e.text for e in train])
    return int8_path


def optimized_graph(model_dir: Path) -> Path:
    """The graph `attnserve export --optimize extended` would ship for the model."""
    from attnserve.export.optimize import optimize_graph

    optimized_path = Path(tempfile.mkdtemp(prefix="bench-optimized-")) / "model.onnx"
    optimize_graph(model_dir / "model.onnx", optimized_path, "extended")
    return optimized_path


def session_open_ms(model_path: Path, reps: int) -> float:
    """Median ms to open an ONNX Runtime session on `model_path` (what startup pays per model)."""
    return median_ms(lambda: open_session(model_path), reps)


def torch_runner(run_dir: Path) -> Run:
    import torch

    from attnserve.models.checkpoint import load_checkpoint

    torch.set_num_threads(THREADS)
    model = load_checkpoint(run_dir).model

    def run(ids: Ids, mask: Ids) -> Any:
        with torch.no_grad():
            return model(torch.from_numpy(ids), torch.from_numpy(mask))

    return run


def real_batch(model_dir: Path, size: int) -> tuple[Ids, Ids]:
    model = load_artifact(model_dir, SessionConfig(providers=(CPU,), exact=True))
    texts = (sentences() * (size // 500 + 1))[:size]
    batch = model.encoder.pad(model.encoder.encode(texts))
    return batch.input_ids, batch.attention_mask


def synthetic(size: int, length: int, vocab: int) -> tuple[Ids, Ids]:
    rng = np.random.default_rng(0)
    ids = rng.integers(2, vocab, size=(size, length), dtype=np.int64)
    return ids, np.ones((size, length), dtype=np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    args = parser.parse_args()
    started_on = machine()
    ensure_run(args.run_dir)
    graphs = {
        "onnxruntime fp32": args.model_dir / "model.onnx",
        "onnxruntime fp32 optimised offline": optimized_graph(args.model_dir),
        "onnxruntime int8": int8_graph(args.model_dir),
    }
    open_ms = {name: session_open_ms(path, args.reps) for name, path in graphs.items()}
    for name, ms in open_ms.items():
        print(f"session open  {name:<36} {ms:8.3f} ms", flush=True)
    runners = {name: session_runner(path) for name, path in graphs.items()}
    runners["pytorch eager fp32"] = torch_runner(args.run_dir)
    vocab = load_artifact(args.model_dir, SessionConfig((CPU,), exact=True)).encoder.vocab_size

    by_batch: dict[str, dict[int, float]] = {name: {} for name in runners}
    for size in BATCHES:
        ids, mask = real_batch(args.model_dir, size)
        for name, ms in time_each(runners, ids, mask, args.reps).items():
            by_batch[name][size] = ms
            print(
                f"batch {size:>3} ({ids.shape[1]:>3} tokens)  {name:<36} {ms:8.3f} ms  "
                f"{size / ms * 1000:9.0f} sentences/s",
                flush=True,
            )
    by_length: dict[str, dict[int, float]] = {name: {} for name in runners}
    for length in LENGTHS:
        ids, mask = synthetic(1, length, vocab)
        for name, ms in time_each(runners, ids, mask, args.reps).items():
            by_length[name][length] = ms
            print(f"length {length:>3}, batch 1  {name:<36} {ms:8.3f} ms")
    sweep: dict[str, dict[int, float]] = {name: {} for name in runners}
    for size in BATCH_SWEEP:
        ids, mask = synthetic(size, 24, vocab)
        for name, ms in time_each(runners, ids, mask, args.reps).items():
            sweep[name][size] = ms
            print(f"batch {size:>3}, 24 tokens  {name:<36} {ms:8.3f} ms")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "inprocess.json").write_text(
        json.dumps(
            {
                "command": command_line("bench.inprocess"),
                "machine": started_on,
                "reps": args.reps,
                "session_open_ms": open_ms,
                "by_batch_ms": by_batch,
                "by_length_ms": by_length,
                "batch_sweep_24_tokens_ms": sweep,
            },
            indent=2,
        )
        + "\n"
    )
    plot(by_length, "tokens in the text (batch 1)", RESULTS / "latency_by_length.png")
    plot(sweep, "texts in the batch (24 tokens each)", RESULTS / "latency_by_batch.png")


def plot(series: dict[str, dict[int, float]], xlabel: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for name, points in series.items():
        axes.plot(list(points), list(points.values()), marker="o", label=name)
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("latency, ms (median)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
