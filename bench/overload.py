"""Overload without collapse: offer several times the sustainable rate, then back off.

    .venv/bin/python -m bench.overload [--factor 4] [--seconds 20] [--queue-texts 512]
                                       [--model NAME] [--detail heads]

Starts `attnserve serve` on 127.0.0.1, measures the rate it sustains (closed loop), offers
FACTOR times that rate (open loop) for SECONDS while sampling the server's RSS, then offers
a third of it to show recovery. Requests go to the default model (the slowest shipped one) or
to --model: 64 texts of 12 sentences each or, with --detail heads (for a model with
self-attention maps, such as `transformer`), 4 texts of 6 sentences with every layer's maps
(megabytes of JSON an answer). Counts each refusal by its error code: a
`request_timeout` is a request admitted and then not answered in time. Prints each phase and
writes bench/results/overload.md (overload-heads.md with --detail heads). Not a test
(tests/test_load.py runs short versions in CI): figures for RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import tempfile
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.common import machine
from bench.load import Phase, closed_loop, open_loop, percentile, percentile_of, request_body
from bench.server_process import ServerProcess, serve

RESULTS = Path(__file__).resolve().parent / "results"
MB = 1024 * 1024


@dataclass
class OverloadRun:
    capacity: Phase
    overload: Phase
    recovery: Phase
    factor: float
    idle_rss_mb: float
    # how long each 503 took by the server's own `request_finished` lines (milliseconds)
    server_refusals_ms: list[float] = field(default_factory=list)

    @property
    def timed_out(self) -> int:
        """Requests admitted and then not answered within the deadline, over every phase."""
        phases = (self.capacity, self.overload, self.recovery)
        return sum(phase.codes()["request_timeout"] for phase in phases)

    def lines(self) -> list[str]:
        growth = max(self.overload.rss_mb) - self.overload.rss_mb[0]
        peak = max(self.overload.rss_mb)
        return [
            self.capacity.summary(),
            self.overload.summary(),
            self.recovery.summary(),
            f"server RSS grew {growth:+.1f} MB under {self.factor:g}x overload; idle "
            f"{self.idle_rss_mb:.0f} MB, at most {peak:.0f} MB "
            f"({peak / self.idle_rss_mb:.2f}x idle)",
            f"admitted and then timed out (request_timeout): {self.timed_out}",
            f"refusals by the server's clock (request_finished): {len(self.server_refusals_ms)}, "
            f"p99 {percentile_of(self.server_refusals_ms, 99) or 0.0:.1f} ms",
        ]


def run(
    factor: float,
    seconds: float,
    capacity_seconds: float,
    environment: dict[str, str],
    model: str | None = None,
    detail: str | None = None,
) -> OverloadRun:
    with tempfile.TemporaryFile() as log:
        with serve(environment, stderr=log.fileno()) as server:
            url = (
                f"{server.url}/v1/predict"
                if model is None
                else f"{server.url}/v1/models/{model}/predict"
            )
            result = asyncio.run(_phases(server, url, factor, seconds, capacity_seconds, detail))
        log.seek(0)
        result.server_refusals_ms = _refusal_durations(log.read().decode(errors="replace"))
    return result


def _refusal_durations(log: str) -> list[float]:
    """duration_ms of the server's `request_finished` lines for 503 answers."""
    durations = []
    for line in log.splitlines():
        with suppress(ValueError):
            event = json.loads(line)
            if event.get("event") == "request_finished" and event.get("status") == 503:
                durations.append(float(event["duration_ms"]))
    return durations


def overload_body(detail: str | None) -> bytes:
    """The request offered: its work for the server is large next to the client's, so the
    client can offer several times what the server takes."""
    if detail == "heads":  # a few texts: every layer's maps make the answer the bulk of it
        return request_body(texts=4, sentences_per_text=6, detail="heads")
    # long texts (about the models' 128-token limit)
    return request_body(sentences_per_text=12, detail=detail)


async def _phases(
    server: ServerProcess,
    url: str,
    factor: float,
    seconds: float,
    capacity_seconds: float,
    detail: str | None,
) -> OverloadRun:
    body = overload_body(detail)
    idle_rss_mb = server.rss_bytes() / MB
    await closed_loop(url, body, concurrency=2, seconds=1.0)  # warm up
    # Four 64-text requests at a time: within any queue of 256 texts or more.
    capacity = await closed_loop(url, body, concurrency=4, seconds=capacity_seconds)
    rate = capacity.offered_rps

    def rss() -> float:
        return server.rss_bytes() / MB

    overload = await open_loop("overload", url, body, factor * rate, seconds, rss)
    await asyncio.sleep(1.0)
    recovery = await open_loop("recovery", url, body, rate / 3, max(seconds / 2, 3.0), rss)
    return OverloadRun(capacity, overload, recovery, factor, idle_rss_mb)


def write_results(name: str, title: str, lines: list[str], module: str | None = None) -> Path:
    """bench/results/NAME.md: the command (bench.MODULE, by default bench.NAME), the machine,
    the date, the printed figures."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.md"
    module = module or name
    command = shlex.join([Path(sys.executable).name, "-m", f"bench.{module}", *sys.argv[1:]])
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
    parser.add_argument("--model", help="a model of the repository by name (default: its default)")
    parser.add_argument("--detail", choices=["heads"], help="ask for every layer's maps")
    args = parser.parse_args()
    environment = {"ATTNSERVE_BATCH_QUEUE_TEXTS": str(args.queue_texts)}
    result = run(
        args.factor, args.seconds, args.capacity_seconds, environment, args.model, args.detail
    )
    what = "4 texts of 6 sentences, detail heads" if args.detail else "64 texts of 12 sentences"
    lines = [
        f"requests of {what} to {args.model or 'the default model'}; "
        f"queue {args.queue_texts} texts",
        *result.lines(),
        f"rejected answered in p99 {1000 * (percentile(result.overload.rejected, 99) or 0):.0f} ms",
    ]
    for line in lines:
        print(line)
    name, title = (
        ("overload-heads", "Overload, detail heads") if args.detail else ("overload", "Overload")
    )
    print(f"wrote {write_results(name, title, lines, module='overload')}")


def _machine_line() -> str:
    where = machine()
    return f"{where['cpu']}, {where['cores']} cores, {where['system']}"


if __name__ == "__main__":
    main()
