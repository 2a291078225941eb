"""`attnserve predict --file` through a running server, against the 64-text HTTP benchmark on
the same server in the same run.

    .venv/bin/python -m bench.score_file [--lines 10000] [--rounds 3] [--seconds 5]

Starts `attnserve serve` once (the default model), writes --lines review sentences to a file
and, each round, times `attnserve predict --url URL --file FILE --out OUT` as a person runs it
(a new process: its start-up and the client's first 413 are counted), then runs bench.http's
64-text scenario (wrk, 8 connections) for --seconds. Prints each round, then the medians and
their ratio (the goal: the file at least 0.8 of the HTTP figure), and writes
bench/results/score_file.json. Needs `wrk` (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ATTNSERVE, REPO_ROOT, RESULTS, command_line, machine, sentences
from bench.http import SCENARIOS, running, write_bodies, wrk

HTTP_SCENARIO = next(s for s in SCENARIOS if s.texts_per_request == 64)


def score_file_once(url: str, source: Path, out: Path) -> float:
    """Sentences/s of one `attnserve predict --file` through the server, start-up included."""
    base_url = url.removesuffix("/v1/predict")
    command = [ATTNSERVE, "predict", "--url", base_url, "--file", str(source), "--out", str(out)]
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    scored = sum(1 for line in out.read_text("utf-8").splitlines() if '"label"' in line)
    return scored / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    started_on = machine()
    work = Path(tempfile.mkdtemp(prefix="bench-score-file-"))
    source = work / "sentences.txt"
    lines = list(itertools.islice(itertools.cycle(sentences()), args.lines))
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bodies = write_bodies(work)[HTTP_SCENARIO.body]
    rounds: list[dict[str, float]] = []
    with running([ATTNSERVE, "serve"], {"ATTNSERVE_LOG_LEVEL": "warning"}) as server:
        url = server.url
        wrk(url, bodies, HTTP_SCENARIO.connections, 1)  # warm-up
        for round_ in range(1, args.rounds + 1):
            file_rate = score_file_once(url, source, work / "scored.jsonl")
            figures = wrk(url, bodies, HTTP_SCENARIO.connections, args.seconds)
            http_rate = figures["requests_per_s"] * HTTP_SCENARIO.texts_per_request
            rounds.append({"file_sentences_per_s": file_rate, "http_sentences_per_s": http_rate})
            print(
                f"round {round_}: predict --file {file_rate:7.0f} sentences/s, "
                f"{HTTP_SCENARIO.name} {http_rate:7.0f} sentences/s",
                flush=True,
            )
    medians = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    ratio = medians["file_sentences_per_s"] / medians["http_sentences_per_s"]
    print(
        f"medians of {args.rounds} rounds: predict --file of {args.lines} lines "
        f"{medians['file_sentences_per_s']:.0f} sentences/s, {HTTP_SCENARIO.name} "
        f"{medians['http_sentences_per_s']:.0f} sentences/s: {ratio:.2f}x (goal: 0.8x or more)"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "score_file.json").write_text(
        json.dumps(
            {
                "command": command_line("bench.score_file"),
                "machine": started_on,
                "lines": args.lines,
                "seconds": args.seconds,
                "scenario": HTTP_SCENARIO.name,
                "medians": medians,
                "ratio": ratio,
                "rounds": rounds,
            },
            indent=2,
        )
        + "\n"
    )
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
