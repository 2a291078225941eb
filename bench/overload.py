"""Overload without collapse: offer several times the sustainable rate, then back off.

    .venv/bin/python -m bench.overload [--factor 4] [--seconds 20] [--queue-texts 512]

Starts `attnserve serve` on 127.0.0.1, measures the rate it sustains (closed loop), offers
FACTOR times that rate (open loop) for SECONDS while sampling the server's RSS, then offers
a third of it to show recovery. Prints each phase and writes bench/results/overload.md.
Not a test (tests/test_overload.py runs a short version in CI): figures for RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.common import machine
from bench.load import Phase, closed_loop, open_loop, percentile, request_body
from bench.server_process import ServerProcess, serve

RESULTS = Path(__file__).resolve().parent / "results"
MB = 1024 * 1024


@dataclass
class OverloadRun:
    capacity: Phase
    overload: Phase
    recovery: Phase
    factor: float

    def lines(self) -> list[str]:
        growth = max(self.overload.rss_mb) - self.overload.rss_mb[0]
        return [
            self.capacity.summary(),
            self.overload.summary(),
            self.recovery.summary(),
            f"server RSS grew {growth:+.1f} MB under {self.factor:g}x overload",
        ]


def run(
    factor: float, seconds: float, capacity_seconds: float, environment: dict[str, str]
) -> OverloadRun:
    with serve(environment) as server:
        return asyncio.run(_phases(server, factor, seconds, capacity_seconds))


async def _phases(
    server: ServerProcess, factor: float, seconds: float, capacity_seconds: float
) -> OverloadRun:
    url = f"{server.url}/v1/predict"
    # Long texts (about the models' 128-token limit): the server's work per request is
    # large next to the client's, so the client can offer several times what the server takes.
    body = request_body(sentences_per_text=12)
    await closed_loop(url, body, concurrency=2, seconds=1.0)  # warm up
    # Four 64-text requests at a time: within any queue of 256 texts or more.
    capacity = await closed_loop(url, body, concurrency=4, seconds=capacity_seconds)
    rate = capacity.offered_rps

    def rss() -> float:
        return server.rss_bytes() / MB

    overload = await open_loop("overload", url, body, factor * rate, seconds, rss)
    await asyncio.sleep(1.0)
    recovery = await open_loop("recovery", url, body, rate / 3, max(seconds / 2, 3.0), rss)
    return OverloadRun(capacity, overload, recovery, factor)


def write_results(name: str, title: str, lines: list[str]) -> Path:
    """bench/results/NAME.md: the command, the machine, the date, the printed figures."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.md"
    command = shlex.join([Path(sys.executable).name, "-m", f"bench.{name}", *sys.argv[1:]])
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"# {title}\n\nCommand: `{command}`  \nMachine: {_machine_line()}  \nDate: {date}\n\n"
        + "```\n"
        + "\n".join(lines)
        + "\n```\n"
    )
    path.write_text(text, encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factor", type=float, default=4.0, help="times the sustainable rate")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the overload")
    parser.add_argument("--capacity-seconds", type=float, default=10.0)
    parser.add_argument(
        "--queue-texts", type=int, default=512, help="ATTNSERVE_BATCH_QUEUE_TEXTS of the server"
    )
    args = parser.parse_args()
    environment = {"ATTNSERVE_BATCH_QUEUE_TEXTS": str(args.queue_texts)}
    result = run(args.factor, args.seconds, args.capacity_seconds, environment)
    lines = [
        f"requests of 64 texts of 12 sentences each; queue {args.queue_texts} texts",
        *result.lines(),
        f"rejected answered in p99 {1000 * (percentile(result.overload.rejected, 99) or 0):.0f} ms",
    ]
    for line in lines:
        print(line)
    print(f"wrote {write_results('overload', 'Overload', lines)}")


def _machine_line() -> str:
    where = machine()
    return f"{where['cpu']}, {where['cores']} cores, {where['system']}"


if __name__ == "__main__":
    main()
