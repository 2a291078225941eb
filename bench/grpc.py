"""HTTP and gRPC side by side on 127.0.0.1: one `attnserve serve` answering both, the same
texts over each, rounds interleaving the two protocols.

    .venv/bin/python -m bench.grpc [--rounds 3] [--seconds 5] [--env NAME=VALUE ...] [--out grpc]

Single texts from 32 connections (HTTP, wrk, bench/wrk/post.lua) against 32 concurrent
streams on one connection (gRPC ModelInfer, h2load: a C HTTP/2 load generator sending the
protocol's framed message), and 64-text requests from 8 against 8. Each request carries the
same texts in both protocols. Single texts also go to each protocol's floor, in the same
rounds: bench/servers/floor.py and bench/servers/grpc_floor.py answer a constant of the same
size, so each protocol's cost on this machine, without attnserve, is measured beside it.
h2load counts HTTP/2 answers, which a gRPC error is too, so the gRPC calls that did not end
OK are read from the server's own metrics, and so are the texts each batch of the model held.
Each run also reads the CPU time the server process spent (every thread: the event loop,
gRPC's own threads, the model's) a request answered: what a request costs, whatever else the
machine was doing (the load generator shares the two cores). `--env` serves attnserve with
other settings. Prints each run and the medians, and writes bench/results/OUT.json (OUT:
grpc unless `--out` says). Needs wrk and h2load (Debian: apt-get install wrk
nghttp2-client).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx

from attnserve.service.grpc import attnserve_oip_pb2 as pb
from attnserve.service.oip.tensors import serialize_bytes
from bench.common import (
    DEFAULT_MODEL_DIR,
    REPO_ROOT,
    RESULTS,
    command_line,
    machine,
    median_figures,
    sentences,
    setting,
)
from bench.http import Running, running, wrk
from bench.server_process import ServerProcess, cpu_seconds, free_port, serve

MODEL = DEFAULT_MODEL_DIR.parent.name
FLOOR_COMMAND = [sys.executable, "-m", "uvicorn", "--factory", "--no-access-log"]
FLOOR_COMMAND.append("bench.servers.floor:create_app")
# (numerator, denominator) of the ratios printed
RATIOS = [
    ("gRPC", "HTTP"),
    ("HTTP", "HTTP floor"),
    ("gRPC", "gRPC floor"),
    ("gRPC floor", "HTTP floor"),
]
INFER_PATH = "/inference.GRPCInferenceService/ModelInfer"
_DURATION = re.compile(r"([\d.]+)(us|ms|s)")


@dataclass(frozen=True)
class Scenario:
    name: str
    concurrency: int  # HTTP connections; gRPC streams on one connection
    texts_per_request: int
    servers: tuple[str, ...]  # attnserve over each protocol, and the floors for single texts


PROTOCOLS = ("HTTP", "gRPC")
FLOORS = ("HTTP floor", "gRPC floor")
SCENARIOS = [
    Scenario("single text, 32 connections / streams", 32, 1, (*PROTOCOLS, *FLOORS)),
    Scenario("64-text requests, 8 connections / streams", 8, 64, PROTOCOLS),
]


def grpc_body(texts: list[str]) -> bytes:
    """A ModelInferRequest for `texts` as gRPC frames it: uncompressed, length, message."""
    message = pb.ModelInferRequest(
        model_name=MODEL,
        inputs=[
            pb.ModelInferRequest.InferInputTensor(name="text", datatype="BYTES", shape=[len(texts)])
        ],
        raw_input_contents=[serialize_bytes([text.encode() for text in texts])],
    ).SerializeToString()
    return struct.pack(">?I", False, len(message)) + message


def h2load(url: str, body: Path, streams: int, seconds: int) -> dict[str, Any]:
    """One h2load run of gRPC calls: calls/s, mean latency, calls h2load saw fail."""
    done = subprocess.run(
        [
            "h2load",
            "--clients=1",
            f"--max-concurrent-streams={streams}",
            "--threads=1",
            f"--duration={seconds}",
            "--header=content-type: application/grpc",
            "--header=te: trailers",
            f"--data={body}",
            url + INFER_PATH,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    finished = re.search(r"^finished in [\d.]+s, ([\d.]+) req/s", done.stdout, re.MULTILINE)
    requests = re.search(
        r"^requests: .* (\d+) succeeded, (\d+) failed, (\d+) errored", done.stdout, re.MULTILINE
    )
    latency = re.search(r"^time for request:\s+(\S+)\s+(\S+)\s+(\S+)", done.stdout, re.MULTILINE)
    if finished is None or requests is None or latency is None:
        raise RuntimeError(f"h2load printed no figures:\n{done.stdout}\n{done.stderr}")
    return {
        "requests_per_s": float(finished.group(1)),
        "mean_ms": _milliseconds(latency.group(3)),
        "failed": int(requests.group(2)) + int(requests.group(3)),
    }


def _milliseconds(duration: str) -> float:
    found = _DURATION.fullmatch(duration)
    if found is None:
        raise RuntimeError(f"h2load duration {duration!r}")
    value, unit = float(found.group(1)), found.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def grpc_calls_not_ok(exposition: str) -> int:
    """ModelInfer calls the server answered with a status other than OK so far, but those
    CANCELLED: the streams h2load leaves when its time is up (wrk drops its too)."""
    total = 0.0
    for line in exposition.splitlines():
        series = line.startswith("attnserve_grpc_requests_total{")
        answered = 'code="OK"' not in line and 'code="CANCELLED"' not in line
        if series and 'method="ModelInfer"' in line and answered:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def batch_totals(exposition: str) -> tuple[float, float]:
    """The texts the model has run so far, and the batches they ran in."""
    totals = {"sum": 0.0, "count": 0.0}
    for line in exposition.splitlines():
        for kind in totals:
            if line.startswith(f'attnserve_batch_size_{kind}{{model="{MODEL}"}}'):
                totals[kind] = float(line.rsplit(" ", 1)[1])
    return totals["sum"], totals["count"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument(
        "--env",
        nargs="*",
        default=[],
        type=setting,
        metavar="NAME=VALUE",
        help="settings attnserve is served with besides its defaults, e.g. "
        "ATTNSERVE_BATCH_MAX_DELAY_MS=2",
    )
    parser.add_argument("--out", default="grpc", help="results file: bench/results/OUT.json")
    args = parser.parse_args()
    settings = dict(args.env)
    started_on = machine()
    for tool in ("wrk", "h2load"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (Debian: apt-get install wrk nghttp2-client)")
    texts = sentences()
    bodies = Path(tempfile.mkdtemp(prefix="bench-grpc-"))
    files: dict[int, tuple[Path, Path]] = {}
    for scenario in SCENARIOS:
        batch = texts[: scenario.texts_per_request]
        json_file = bodies / f"{scenario.texts_per_request}.json"
        grpc_file = bodies / f"{scenario.texts_per_request}.grpc"
        json_file.write_text(json.dumps({"texts": batch}) + "\n")
        grpc_file.write_bytes(grpc_body(batch))
        files[scenario.texts_per_request] = (json_file, grpc_file)
    grpc_port = free_port()
    environment = {
        "ATTNSERVE_GRPC_PORT": str(grpc_port),
        "ATTNSERVE_LOG_LEVEL": "warning",
        **settings,
    }
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        s.name: {name: [] for name in s.servers} for s in SCENARIOS
    }
    with (
        serve(environment) as server,
        running(FLOOR_COMMAND, {}) as http_floor,
        grpc_floor() as grpc_floor_server,
    ):
        targets = {
            # the model gRPC names
            "HTTP": Running(f"{server.url}/v1/models/{MODEL}/predict", server.pid),
            "gRPC": Running(f"http://127.0.0.1:{grpc_port}", server.pid),
            "HTTP floor": http_floor,
            "gRPC floor": grpc_floor_server,
        }
        for round_ in range(1, args.rounds + 1):
            for scenario in SCENARIOS:
                # alternate which goes first, so a drift of the machine hits all alike
                order = scenario.servers if round_ % 2 else scenario.servers[::-1]
                for protocol in order:
                    request_files = files[scenario.texts_per_request]
                    load = Load(server, targets[protocol], request_files, scenario)
                    load.run(protocol, 1)  # warm-up
                    figures = load.run(protocol, args.seconds)
                    figures["sentences_per_s"] = (
                        figures["requests_per_s"] * scenario.texts_per_request
                    )
                    runs[scenario.name][protocol].append(figures)
                    print(
                        f"round {round_} {scenario.name:<42} {protocol:<10} "
                        f"{figures['requests_per_s']:9.0f} req/s  "
                        f"{figures['sentences_per_s']:9.0f} sentences/s  "
                        f"mean {figures['mean_ms']:7.2f} ms  "
                        f"server CPU {figures['cpu_us_per_request']:5.0f} µs/request  "
                        f"{_batching(figures)}"
                        f"failed {figures['failed']}",
                        flush=True,
                    )
    medians = median_figures(runs, summed="failed")
    print(f"\nmedians of {args.rounds} rounds, {args.seconds} s each:")
    for scenario_name, protocols in medians.items():
        for protocol, m in protocols.items():
            print(
                f"{scenario_name:<42} {protocol:<10} {m['requests_per_s']:9.0f} req/s  "
                f"{m['sentences_per_s']:9.0f} sentences/s  mean {m['mean_ms']:7.2f} ms  "
                f"server CPU {m['cpu_us_per_request']:5.0f} µs/request  "
                f"{_batching(m)}failed {m['failed']}"
            )
        for numerator, denominator in RATIOS:
            if numerator in protocols and denominator in protocols:
                top, bottom = protocols[numerator], protocols[denominator]
                ratio = top["requests_per_s"] / bottom["requests_per_s"]
                cpu = top["cpu_us_per_request"] / bottom["cpu_us_per_request"]
                print(
                    f"{scenario_name:<42} {numerator} / {denominator} {ratio:.2f}x "
                    f"(server CPU a request {cpu:.2f}x)"
                )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(
        json.dumps(
            {
                "command": command_line("bench.grpc"),
                "machine": started_on,
                "rounds": args.rounds,
                "seconds": args.seconds,
                "model": MODEL,
                "settings": settings,
                "medians": medians,
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )


def _batching(figures: dict[str, Any]) -> str:
    """The texts a batch held, for attnserve's figures; blank for a floor's."""
    if "texts_per_batch" not in figures:
        return " " * 19
    return f"{figures['texts_per_batch']:5.1f} texts/batch  "


@dataclass(frozen=True)
class Load:
    """One scenario's load on one server: attnserve over either protocol, or a floor."""

    server: ServerProcess  # attnserve, whose metrics count the gRPC calls that failed
    target: Running  # what is loaded: attnserve over one protocol, or a floor
    bodies: tuple[Path, Path]  # the JSON body (HTTP), the framed message (gRPC)
    scenario: Scenario

    def run(self, protocol: str, seconds: int) -> dict[str, Any]:
        """requests/s, mean latency in ms, the server's CPU time a request (µs), the
        requests that failed and, for attnserve, the mean texts a batch."""
        metrics_url = f"{self.server.url}/metrics"
        before = httpx.get(metrics_url).text if protocol in PROTOCOLS else ""
        cpu_before = cpu_seconds(self.target.pid)
        figures = self._load(protocol, seconds)
        answered = figures["requests_per_s"] * seconds
        figures["cpu_us_per_request"] = (
            (cpu_seconds(self.target.pid) - cpu_before) * 1e6 / answered if answered else 0.0
        )
        if protocol in PROTOCOLS:
            after = httpx.get(metrics_url).text
            if protocol == "gRPC":
                figures["failed"] += grpc_calls_not_ok(after) - grpc_calls_not_ok(before)
            (texts, batches), (texts_before, batches_before) = map(batch_totals, (after, before))
            figures["texts_per_batch"] = (texts - texts_before) / max(1.0, batches - batches_before)
        return figures

    def _load(self, protocol: str, seconds: int) -> dict[str, Any]:
        json_body, grpc_message = self.bodies
        url = self.target.url
        if protocol.startswith("HTTP"):
            figures = wrk(url, json_body, self.scenario.concurrency, seconds)
            return {
                "requests_per_s": figures["requests_per_s"],
                "mean_ms": figures["mean_ms"],
                "failed": figures["non_2xx"] + figures["socket_errors"],
            }
        return h2load(url, grpc_message, self.scenario.concurrency, seconds)


@contextlib.contextmanager
def grpc_floor() -> Iterator[Running]:
    """bench/servers/grpc_floor.py on a free port, once it takes connections; yields it."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.servers.grpc_floor", "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
        yield Running(f"http://127.0.0.1:{port}", process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)


if __name__ == "__main__":
    main()
