"""Cold start: seconds from `attnserve serve` being launched to `/readyz` answering 200.

    .venv/bin/python -m bench.startup [--runs 5]

Prints each run and the median. Not a test: a figure for the docs.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ATTNSERVE = str(Path(sys.executable).parent / "attnserve")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seconds_to_ready(timeout_s: float = 30.0) -> float:
    """Starts a server, waits for readiness, stops it; returns the time to ready."""
    port = _free_port()
    start = time.monotonic()
    process = subprocess.Popen(
        [ATTNSERVE, "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.monotonic() - start < timeout_s:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    return time.monotonic() - start
            except httpx.TransportError:
                pass
            time.sleep(0.01)
        raise TimeoutError(f"not ready within {timeout_s} s")
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    times = []
    for run in range(1, runs + 1):
        times.append(seconds_to_ready())
        print(f"run {run}: ready after {times[-1]:.2f} s")
    print(f"cold start, median of {runs}: {statistics.median(times):.2f} s")


if __name__ == "__main__":
    main()
