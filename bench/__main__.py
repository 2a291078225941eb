"""The whole benchmark suite, then BENCHMARKS.md: `.venv/bin/python -m bench`.

Runs bench.startup, bench.inprocess, bench.ceiling (what the graphs serve with no server
around them) and bench.http, for bilstm-additive (the fastest model: the request path's
figures) and for the repository's default, the pretrained encoder, then
bench.score_file and bench.grpc (HTTP and gRPC side by side; each also runs alone, see its
docstring), and writes their figures into BENCHMARKS.md with
bench.report. Takes about 25 minutes on 2 cores, and bench.grpc 2 more (more where the
encoder's run must be fine-tuned first). Needs `wrk` and `h2load` (Debian: apt-get install wrk
nghttp2-client) and the train extra (the PyTorch side). bench.tune, which chose the batching
defaults, runs on its own.
"""

from __future__ import annotations

import subprocess
import sys

from bench.common import REPO_ROOT

STEPS = [
    ["bench.startup"],
    ["bench.inprocess"],
    # what the shipped graphs serve with no server around them: the bound of every server
    ["bench.ceiling"],
    ["bench.http"],
    # the largest shipped model, where batching pays most (its naive server needs the run)
    [
        "bench.http",
        "--model-dir",
        "model_repository/minilm-attention/1",
        "--run-dir",
        "runs/minilm-attention",
        "--seconds",
        "10",
    ],
    # `attnserve predict --file` of 10,000 lines against the 64-text HTTP figure
    ["bench.score_file"],
    # the same server over HTTP and gRPC, side by side (needs h2load as well as wrk)
    ["bench.grpc"],
    ["bench.report"],
]


def main() -> None:
    for step in STEPS:
        print(f"== {' '.join(step)}", flush=True)
        subprocess.run([sys.executable, "-m", *step], cwd=REPO_ROOT, check=True)


if __name__ == "__main__":
    main()
