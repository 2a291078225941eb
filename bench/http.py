"""Over HTTP on 127.0.0.1: attnserve against the floor, naive and plain servers, interleaved.

    .venv/bin/python -m bench.http [--rounds 3] [--seconds 5] [--model-dir DIR --run-dir DIR]

Every server is started once (attnserve also on granian, where granian is installed:
`pip install granian`; BENCHMARKS.md keeps that comparison apart, from `--results
http-granian.json`); each round runs every scenario against every server in turn
(so drifts of a noisy machine hit them all alike), driven by `wrk` with bench/wrk/post.lua.
Prints each run, then the medians, and writes bench/results/http.json (for another model
than the default, http-NAME.json: attnserve serves the whole repository with NAME as its
default). Needs `wrk` (Debian: apt-get install wrk) and, for the naive server, the train
extra and a trained run (trained with seed 13 where it is missing; `--only` without naive
needs neither).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from attnserve.service.server import APP_FACTORY
from bench.common import (
    ATTNSERVE,
    DEFAULT_MODEL_DIR,
    DEFAULT_RUN_DIR,
    REPO_ROOT,
    RESULTS,
    command_line,
    ensure_run,
    machine,
    median_figures,
    sentences,
)
from bench.server_process import free_port

LUA = REPO_ROOT / "bench" / "wrk" / "post.lua"


@dataclass(frozen=True)
class Scenario:
    name: str
    connections: int
    texts_per_request: int
    body: str  # which of write_bodies' files: "text" ({"text": t}), "texts" ({"texts": [...]})


SCENARIOS = [
    Scenario("1 connection", 1, 1, "text"),
    Scenario("32 connections", 32, 1, "text"),
    Scenario('32 connections, {"texts": [t]}', 32, 1, "texts"),
    Scenario("128 connections", 128, 1, "text"),
    Scenario("64-text requests, 8 connections", 8, 64, "texts64"),
]


def server_commands(model_dir: Path, run_dir: Path, workers: int) -> dict[str, list[str]]:
    """Every server, and with `workers` > 1 attnserve, the floor and the plain server again with
    that many worker processes: a ratio compares servers of the same worker count."""
    uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "--no-access-log"]
    commands = {
        "attnserve": [ATTNSERVE, "serve"],
        "floor": [*uvicorn, "bench.servers.floor:create_app"],
        "naive": [*uvicorn, "bench.servers.naive:create_app"],
        "plain": [*uvicorn, "bench.servers.plain:create_app"],
    }
    if importlib.util.find_spec("granian") is not None:
        # the same app on another ASGI server (uvicorn's connection bounds and drain aside)
        granian = [str(Path(sys.executable).parent / "granian"), "--interface", "asgi"]
        granian += ["--factory", "--loop", "uvloop", "--no-ws", "--log-level", "warning"]
        commands["attnserve on granian"] = [*granian, APP_FACTORY]
    if workers > 1:
        more = ["--workers", str(workers)]
        commands[f"attnserve --workers {workers}"] = [ATTNSERVE, "serve", *more]
        commands[f"floor --workers {workers}"] = [*uvicorn, *more, "bench.servers.floor:create_app"]
        commands[f"plain --workers {workers}"] = [*uvicorn, *more, "bench.servers.plain:create_app"]
    return commands


@dataclass(frozen=True)
class Running:
    """A server `running` started: the URL it answers predictions on, and its process."""

    url: str
    pid: int


@contextmanager
def running(command: list[str], env: dict[str, str]) -> Iterator[Running]:
    """Starts a server on a free port, waits until it answers a prediction; yields it."""
    port = free_port()
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1/predict"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.post(url, json={"text": "fine"}).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command} did not start")
            time.sleep(0.1)
        yield Running(url, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)


def wrk(url: str, bodies: Path, connections: int, seconds: int) -> dict[str, Any]:
    """One wrk run: requests/s, mean and p50/p90/p99 latency in ms, non-2xx count."""
    threads = min(2, connections)
    done = subprocess.run(
        # wrk counts an answer slower than its timeout (2 s by default) as an error, not a
        # request: a 64-text request to the pretrained encoder takes longer than that.
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "60s",
            "-s",
            str(LUA),
            url,
        ],
        env={**os.environ, "BODIES": str(bodies)},
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"^WRKJSON (.*)$", done.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk printed no figures:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(found.group(1))
    return {
        "requests_per_s": raw["requests"] / (raw["duration_us"] / 1e6),
        "mean_ms": raw["mean_us"] / 1000,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "non_2xx": raw["non_2xx"],
        "socket_errors": raw["socket_errors"],
    }


def write_bodies(directory: Path) -> dict[str, Path]:
    """One JSON body a line, from the UCI sentences: a sentence as {"text": t} and as
    {"texts": [t]}, and 64-text batches."""
    texts = sentences()
    files = {name: directory / f"{name}.txt" for name in ("text", "texts", "texts64")}
    files["text"].write_text("\n".join(json.dumps({"text": t}) for t in texts) + "\n")
    files["texts"].write_text("\n".join(json.dumps({"texts": [t]}) for t in texts) + "\n")
    batches = [texts[i : i + 64] for i in range(0, len(texts) - 64, 61)]
    files["texts64"].write_text("\n".join(json.dumps({"texts": b}) for b in batches) + "\n")
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="also serve attnserve so")
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--run-dir", type=Path, default=DEFAULT_RUN_DIR)
    parser.add_argument("--only", nargs="*", help="servers to run (default: all)")
    parser.add_argument("--results", help="the file under bench/results (default: http*.json)")
    args = parser.parse_args()
    started_on = machine()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    model = args.model_dir.resolve().parent.name
    commands = server_commands(args.model_dir, args.run_dir, args.workers)
    if args.only:
        commands = {name: commands[name] for name in args.only}
    if "naive" in commands:  # the PyTorch checkpoint it serves comes from a training run
        architecture = json.loads((args.model_dir / "manifest.json").read_text())["architecture"]
        ensure_run(args.run_dir, architecture)
    env = {
        "ATTNSERVE_LOG_LEVEL": "warning",
        "ATTNSERVE_MODEL_REPOSITORY": str(args.model_dir.parent.parent),
        "ATTNSERVE_DEFAULT_MODEL": model,
        "BENCH_MODEL_DIR": str(args.model_dir),
        "BENCH_RUN_DIR": str(args.run_dir),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    bodies = write_bodies(Path(tempfile.mkdtemp(prefix="bench-bodies-")))
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        s.name: {name: [] for name in commands} for s in SCENARIOS
    }
    for round_ in range(1, args.rounds + 1):
        for name, command in commands.items():
            # One server at a time, so they never compete for the cores.
            with running(command, env) as server:
                url = server.url
                for scenario in SCENARIOS:
                    body_file = bodies[scenario.body]
                    wrk(url, body_file, scenario.connections, 1)  # warm-up
                    # What the warm-up left in flight is still computed: queue one request
                    # behind it, so the timed run starts on an idle server.
                    first_body = body_file.read_text().split("\n", 1)[0]
                    httpx.post(
                        url,
                        content=first_body,
                        headers={"content-type": "application/json"},
                        timeout=300,
                    ).raise_for_status()
                    figures = wrk(url, body_file, scenario.connections, args.seconds)
                    figures["sentences_per_s"] = (
                        figures["requests_per_s"] * scenario.texts_per_request
                    )
                    runs[scenario.name][name].append(figures)
                    print(
                        f"round {round_} {scenario.name:<34} {name:<22} "
                        f"{figures['requests_per_s']:9.0f} req/s  "
                        f"{figures['sentences_per_s']:9.0f} sentences/s  "
                        f"p50 {figures['p50_ms']:7.2f} ms  p99 {figures['p99_ms']:7.2f} ms"
                        f"  non-2xx {figures['non_2xx']}",
                        flush=True,
                    )
    medians = median_figures(runs, summed="non_2xx", dropped=("socket_errors",))
    print(f"\nmedians of {args.rounds} rounds, {args.seconds:g} s each:")
    for scenario_name, servers in medians.items():
        for name, m in servers.items():
            print(
                f"{scenario_name:<34} {name:<22} {m['requests_per_s']:9.0f} req/s  "
                f"{m['sentences_per_s']:9.0f} sentences/s  "
                f"p50 {m['p50_ms']:7.2f} ms  p99 {m['p99_ms']:7.2f} ms"
            )
    results = args.results or (
        "http.json" if args.model_dir.resolve() == DEFAULT_MODEL_DIR else f"http-{model}.json"
    )
    (RESULTS / results).write_text(
        json.dumps(
            {
                "command": command_line("bench.http"),
                "machine": started_on,
                "rounds": args.rounds,
                "seconds": args.seconds,
                "model": model,
                "medians": medians,
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
