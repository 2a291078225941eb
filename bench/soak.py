"""Soak: a steady 70% of capacity for a long while; no errors, and memory that stays put.

    .venv/bin/python -m bench.soak [--seconds 600] [--load 0.7] [--capacity-seconds 20]
                                   [--max-rss-growth-mb 50] [--trace] [--model NAME]

Starts `attnserve serve` on 127.0.0.1, measures the rate it sustains (closed loop, for
CAPACITY_SECONDS), then offers LOAD times that rate (open loop) for SECONDS, sampling the
server's RSS twice a second. RSS growth is measured from the end of the first tenth of the
run (allocator arenas and caches fill up first) to the end. With --trace the server runs under
strace (bench/syscall_trace.py) and any outbound connection or file written fails the soak too.
Exits 1 on any error or growth over the bound. Prints the figures and writes
bench/results/soak.md. tests/test_load.py runs a short one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.load import TEXTS_PER_REQUEST, Phase, closed_loop, open_loop, request_body
from bench.overload import write_results
from bench.server_process import ServerProcess, serve
from bench.syscall_trace import SyscallTrace

MB = 1024 * 1024


@dataclass
class SoakRun:
    capacity: Phase
    soak: Phase
    model: str | None  # None: the repository's default

    @property
    def rss_growth_mb(self) -> float:
        samples = self.soak.rss_mb
        return samples[-1] - samples[len(samples) // 10]

    def lines(self) -> list[str]:
        samples = self.soak.rss_mb
        return [
            f"requests of {TEXTS_PER_REQUEST} texts to {self.model or 'the default model'}",
            self.capacity.summary(),
            self.soak.summary(),
            f"server RSS after the first tenth {samples[len(samples) // 10]:.1f} MB, "
            f"at the end {samples[-1]:.1f} MB, max {max(samples):.1f} MB: "
            f"growth {self.rss_growth_mb:+.1f} MB over {len(samples)} samples",
        ]


def run(
    seconds: float,
    load: float,
    capacity_seconds: float,
    model: str | None = None,
    trace: Path | None = None,
) -> SoakRun:
    """The soak against the default model, or against `model` by name; under strace into
    `trace`, when given."""
    # as in the image, Python writes no bytecode cache: a file written is the server's own
    with serve({"PYTHONDONTWRITEBYTECODE": "1"}, trace=trace) as server:
        url = (
            f"{server.url}/v1/predict"
            if model is None
            else f"{server.url}/v1/models/{model}/predict"
        )
        capacity, soak = asyncio.run(_phases(server, url, seconds, load, capacity_seconds))
    return SoakRun(capacity, soak, model)


async def _phases(
    server: ServerProcess, url: str, seconds: float, load: float, capacity_s: float
) -> tuple[Phase, Phase]:
    # 64-text requests: the server, not the load client on the same cores, is what is measured.
    # With 8-text ones the client's work grew with the connections it held, and a rate the
    # server sustained for 5 s in a closed loop was more than it sustained for minutes.
    body = request_body(TEXTS_PER_REQUEST)
    await closed_loop(url, body, concurrency=2, seconds=1.0)  # warm up
    capacity = await closed_loop(url, body, concurrency=8, seconds=capacity_s)

    def rss() -> float:
        return server.rss_bytes() / MB

    soak = await open_loop(
        f"soak at {load:.0%}", url, body, load * capacity.offered_rps, seconds, rss
    )
    return capacity, soak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--load", type=float, default=0.7, help="fraction of the measured capacity")
    parser.add_argument("--capacity-seconds", type=float, default=20.0)
    parser.add_argument("--max-rss-growth-mb", type=float, default=50.0)
    parser.add_argument(
        "--trace", action="store_true", help="under strace: no outbound connection, no file written"
    )
    parser.add_argument("--model", help="a model of the repository by name (default: its default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "strace.log" if args.trace else None
        result = run(args.seconds, args.load, args.capacity_seconds, args.model, log)
        syscalls = None if log is None else SyscallTrace.read(log)
    passed = not result.soak.errors and not result.soak.rejected
    passed = passed and result.rss_growth_mb <= args.max_rss_growth_mb
    passed = passed and (syscalls is None or not (syscalls.peers or syscalls.written))
    lines = [
        *result.lines(),
        *([] if syscalls is None else [f"under strace: {syscalls.summary()}"]),
        f"{'PASS' if passed else 'FAIL'}: {len(result.soak.errors)} errors, "
        f"{len(result.soak.rejected)} rejected, RSS growth {result.rss_growth_mb:+.1f} MB "
        f"(bound {args.max_rss_growth_mb:g} MB)",
    ]
    for line in lines:
        print(line)
    print(f"wrote {write_results('soak', 'Soak', lines)}")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
