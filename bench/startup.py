"""Cold start and memory: `attnserve serve` launched -> first successful prediction, and its RSS.

    .venv/bin/python -m bench.startup [--runs 5] [--all-models]

Serves the default model alone (a repository of just its directory, as the goal states), or
with --all-models the whole shipped repository. Prints each run and the medians (seconds to
/readyz 200, seconds to the first 200 from POST /v1/predict, the CPU seconds the server used
until then, resident memory after it) and writes bench/results/startup.json. Not a test:
figures for the docs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import ATTNSERVE, DEFAULT_MODEL_DIR, RESULTS, command_line, machine
from bench.server_process import free_port


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used: what a loaded machine cannot inflate."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cold_start(repository: Path, timeout_s: float = 60.0) -> dict[str, float]:
    """Starts a server, waits for readiness and a first prediction, reads its RSS, stops it."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    start = time.monotonic()
    process = subprocess.Popen(
        [ATTNSERVE, "serve", "--port", str(port)],
        env={
            **os.environ,
            "ATTNSERVE_LOG_LEVEL": "warning",
            "ATTNSERVE_MODEL_REPOSITORY": str(repository),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ready = None
        while time.monotonic() - start < timeout_s:
            try:
                if ready is None and httpx.get(f"{base}/readyz").status_code == 200:
                    ready = time.monotonic() - start
                if ready is not None:
                    answer = httpx.post(f"{base}/v1/predict", json={"text": "Works great"})
                    if answer.status_code == 200:
                        first = time.monotonic() - start
                        return {
                            "ready_s": ready,
                            "first_prediction_s": first,
                            "cpu_s": _cpu_s(process.pid),
                            "rss_mb": _rss_mb(process.pid),
                        }
            except httpx.TransportError:
                pass
            time.sleep(0.01)
        raise TimeoutError(f"no prediction within {timeout_s} s")
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--all-models", action="store_true", help="serve every shipped model")
    args = parser.parse_args()
    runs = args.runs
    started_on = machine()
    repository = DEFAULT_MODEL_DIR.parent.parent
    if not args.all_models:
        repository = Path(tempfile.mkdtemp(prefix="bench-startup-"))
        (repository / DEFAULT_MODEL_DIR.parent.name).mkdir()
        (repository / DEFAULT_MODEL_DIR.parent.name / DEFAULT_MODEL_DIR.name).symlink_to(
            DEFAULT_MODEL_DIR
        )
    results = []
    for run in range(1, runs + 1):
        results.append(cold_start(repository))
        r = results[-1]
        print(
            f"run {run}: ready after {r['ready_s']:.2f} s, first prediction after "
            f"{r['first_prediction_s']:.2f} s ({r['cpu_s']:.2f} s of CPU), "
            f"RSS {r['rss_mb']:.0f} MB",
            flush=True,
        )
    medians = {key: statistics.median(r[key] for r in results) for key in results[0]}
    print(
        f"median of {runs}: ready {medians['ready_s']:.2f} s, first prediction "
        f"{medians['first_prediction_s']:.2f} s ({medians['cpu_s']:.2f} s of CPU), "
        f"RSS {medians['rss_mb']:.0f} MB"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "startup.json").write_text(
        json.dumps(
            {
                "command": command_line("bench.startup"),
                "models": "all shipped" if args.all_models else DEFAULT_MODEL_DIR.parent.name,
                "machine": started_on,
                "runs": results,
                "medians": medians,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
