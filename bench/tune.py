"""Chooses the batching defaults: attnserve under several settings, interleaved, over HTTP.

    .venv/bin/python -m bench.tune [--rounds 3] [--seconds 4] [--model NAME] [--out NAME]
        [--only VARIANT ...] [--with ATTNSERVE_NAME=VALUE ...]

Every variant changes the settings it names from the defaults (and from `--with`'s, which
every variant runs with) and states them (a batch size, for the model
tuned: over its manifest's serving hint too). Each round serves the repository's default model
(or --model, as the default) once per setting and drives it with wrk at 1 and 32 connections
with single texts, and with 64-text requests. Prints each run and the medians, and writes
bench/results/OUT.json (tune.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.common import ATTNSERVE, DEFAULT_MODEL_DIR, RESULTS, command_line, machine, setting
from bench.http import SCENARIOS, running, write_bodies, wrk

# Each variant changes the settings it names from the service's defaults (32 texts a batch, no
# delay, one batch computing at a time on every core or, where the model's manifest says, one
# one-thread batch per core, lone texts of a model under 1 ms a text computed on the event
# loop, ONNX Runtime threads that spin as the model's manifest says, residual Adds and
# LayerNormalizations left unfused on the CPU).
VARIANTS: dict[str, dict[str, str]] = {
    "defaults": {},
    "no batching": {"ATTNSERVE_BATCHING": "false"},
    "max 1": {"ATTNSERVE_BATCH_MAX_SIZES": "1"},
    "max 4": {"ATTNSERVE_BATCH_MAX_SIZES": "4"},
    "max 8": {"ATTNSERVE_BATCH_MAX_SIZES": "8"},
    "max 16": {"ATTNSERVE_BATCH_MAX_SIZES": "16"},
    "max 64": {"ATTNSERVE_BATCH_MAX_SIZES": "64"},
    "delay 1 ms": {"ATTNSERVE_BATCH_MAX_DELAY_MS": "1"},
    "1 ORT thread": {"ATTNSERVE_INTRA_OP_THREADS": "1"},
    "spinning": {"ATTNSERVE_INTRA_OP_SPINNING": "true"},
    "no spinning": {"ATTNSERVE_INTRA_OP_SPINNING": "false"},
    "no inline": {"ATTNSERVE_INLINE_BELOW_MS": "0"},
    "inline below 10 ms": {"ATTNSERVE_INLINE_BELOW_MS": "10"},
    "one batch at a time": {"ATTNSERVE_BATCH_CONCURRENCY": "1"},
    "SkipLayerNorm fused": {"ATTNSERVE_FUSE_SKIP_LAYER_NORM": "true"},
    "2 batches at once": {"ATTNSERVE_BATCH_CONCURRENCY": "2"},
    "2 batches at once, 1 ORT thread": {
        "ATTNSERVE_BATCH_CONCURRENCY": "2",
        "ATTNSERVE_INTRA_OP_THREADS": "1",
    },
    "2 batches at once, no spinning": {
        "ATTNSERVE_BATCH_CONCURRENCY": "2",
        "ATTNSERVE_INTRA_OP_SPINNING": "false",
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--only", nargs="*", help="variants to run (default: all)")
    parser.add_argument("--out", default="tune", help="results file: bench/results/OUT.json")
    parser.add_argument("--model", help="the model tuned (default: the repository's default)")
    parser.add_argument(
        "--with",
        dest="settings",
        nargs="*",
        default=[],
        type=setting,
        metavar="NAME=VALUE",
        help="settings every variant runs with, 'defaults' included, e.g. "
        "ATTNSERVE_BATCH_CONCURRENCY=2",
    )
    args = parser.parse_args()
    repository = DEFAULT_MODEL_DIR.parent.parent
    model = args.model or (repository / "default_model.txt").read_text().strip()
    started_on = machine()
    RESULTS.mkdir(parents=True, exist_ok=True)
    bodies = write_bodies(Path(tempfile.mkdtemp(prefix="bench-bodies-")))
    base = {
        "ATTNSERVE_LOG_LEVEL": "warning",
        "ATTNSERVE_MODEL_REPOSITORY": str(repository),
        "ATTNSERVE_DEFAULT_MODEL": model,
        **dict(args.settings),
    }
    variants = {
        name: {
            key: json.dumps({model: int(value)}) if key == "ATTNSERVE_BATCH_MAX_SIZES" else value
            for key, value in VARIANTS[name].items()
        }
        for name in (args.only or VARIANTS)
    }
    scenarios = [s for s in SCENARIOS if s.connections != 128 and s.body != "texts"]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        s.name: {v: [] for v in variants} for s in scenarios
    }
    for round_ in range(1, args.rounds + 1):
        for variant, env in variants.items():
            with running([ATTNSERVE, "serve"], base | env) as server:
                url = server.url
                for scenario in scenarios:
                    body_file = bodies[scenario.body]
                    wrk(url, body_file, scenario.connections, 1)
                    figures = wrk(url, body_file, scenario.connections, args.seconds)
                    figures["sentences_per_s"] = (
                        figures["requests_per_s"] * scenario.texts_per_request
                    )
                    runs[scenario.name][variant].append(figures)
                    print(
                        f"round {round_} {scenario.name:<34} {variant:<22} "
                        f"{figures['sentences_per_s']:9.0f} sentences/s  "
                        f"p50 {figures['p50_ms']:7.2f} ms  p99 {figures['p99_ms']:7.2f} ms",
                        flush=True,
                    )
    print(f"\nmedians of {args.rounds} rounds, {args.seconds} s each:")
    medians: dict[str, dict[str, dict[str, float]]] = {}
    for scenario_name, by_variant in runs.items():
        medians[scenario_name] = {}
        for variant, variant_runs in by_variant.items():
            m = {
                key: statistics.median(run[key] for run in variant_runs)
                for key in ("sentences_per_s", "p50_ms", "p99_ms")
            }
            medians[scenario_name][variant] = m
            print(
                f"{scenario_name:<34} {variant:<22} {m['sentences_per_s']:9.0f} sentences/s  "
                f"p50 {m['p50_ms']:7.2f} ms  p99 {m['p99_ms']:7.2f} ms"
            )
    (RESULTS / f"{args.out}.json").write_text(
        json.dumps(
            {
                "command": command_line("bench.tune"),
                "machine": started_on,
                "rounds": args.rounds,
                "model": model,
                "settings": dict(args.settings),
                "variants": variants,
                "medians": medians,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
