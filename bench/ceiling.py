"""What ONNX Runtime alone serves of a shipped model on this machine: the bound every server of
that model works under, attnserve and the reference servers alike.

    .venv/bin/python -m bench.ceiling [--model NAME ...] [--rounds 3] [--seconds 3]

The sentences the HTTP benchmarks send (bench/common.sentences), tokenised and padded ahead of
time as attnserve pads them, run through the model's graph with nothing between the runs but
the loop that calls them: no HTTP, no JSON, no tokenising, no batching queue. Scenarios:

- single texts, one run at a time, in a session on every core (ONNX Runtime's threads as it
  decides, the manifest's spinning hint): what one connection could get;
- single texts, a run per core (each a session of one thread): the most a server that runs a
  text at a time (bench's plain server) could serve;
- single texts in batches of the size attnserve runs the model at (the manifest's hint, else
  the default 32), the whole file sorted by length first (no queue ever holds texts this
  alike in length): one run at a time on every core, as attnserve runs the word models by
  default, and a run per core (as it runs the encoder), the most a batching server could
  serve;
- 64-text requests, each sorted by length and cut at that size as attnserve cuts a request,
  a run per core.

Prints sentences/s (medians of interleaved rounds) and the CPU time a sentence took (every
thread of this process), and writes bench/results/ceiling.json for bench.report.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from attnserve.artifact.graph import OUTPUT_NAMES, PaddedBatch
from attnserve.artifact.tokenizer import TextEncoder
from attnserve.service.loading import load_artifact
from attnserve.service.onnxruntime_env import onnxruntime as ort
from attnserve.service.providers import CPU, SessionConfig
from attnserve.service.settings import Settings
from bench.common import REPO_ROOT, RESULTS, command_line, machine, sentences

REPOSITORY = REPO_ROOT / "model_repository"
REQUEST_TEXTS = 64
CORES = os.cpu_count() or 1
OUTPUTS = list(OUTPUT_NAMES)  # what the service asks of every run


@dataclass(frozen=True)
class Scenario:
    name: str
    batches: list[PaddedBatch]
    runs: int  # concurrent runs, each in its own thread
    session: ort.InferenceSession


def padded(encoder: TextEncoder, texts: list[str], size: int) -> list[PaddedBatch]:
    """`texts` in pieces of `size`, each padded to its own longest, as the batcher pads them."""
    encoded = encoder.encode(texts)
    return [encoder.pad(encoded[start : start + size]) for start in range(0, len(encoded), size)]


def by_length(encoder: TextEncoder, texts: list[str]) -> list[str]:
    return sorted(texts, key=lambda text: len(encoder.encode([text])[0].ids))


def scenarios(model_dir: Path) -> list[Scenario]:
    all_cores = SessionConfig(providers=(CPU,), exact=True, batch_concurrency=1)
    served = load_artifact(model_dir, all_cores)
    encoder, manifest = served.encoder, served.manifest
    size = manifest.serving.max_batch_size or Settings.model_fields["batch_max_size"].default
    one_thread = SessionConfig(providers=(CPU,), exact=True, intra_op_threads=1)
    per_core = one_thread.open_session(model_dir / "model.onnx", manifest.serving)
    texts = sentences()
    requests = [
        batch
        for start in range(0, len(texts) - REQUEST_TEXTS + 1, REQUEST_TEXTS)
        for batch in padded(encoder, by_length(encoder, texts[start : start + REQUEST_TEXTS]), size)
    ]
    return [
        Scenario("single texts, one run at a time", padded(encoder, texts, 1), 1, served.session),
        Scenario("single texts, a run per core", padded(encoder, texts, 1), CORES, per_core),
        Scenario(
            f"single texts in batches of {size} by length, one run at a time",
            padded(encoder, by_length(encoder, texts), size),
            1,
            served.session,
        ),
        Scenario(
            f"single texts in batches of {size} by length, a run per core",
            padded(encoder, by_length(encoder, texts), size),
            CORES,
            per_core,
        ),
        Scenario(
            f"{REQUEST_TEXTS}-text requests cut at {size}, a run per core",
            requests,
            CORES,
            per_core,
        ),
    ]


def measure(scenario: Scenario, seconds: float) -> dict[str, float]:
    """Runs the scenario's batches round and round for `seconds`, from its threads."""
    deadline = time.perf_counter() + seconds
    done = [0] * scenario.runs

    def work(thread: int) -> None:
        position = thread
        while time.perf_counter() < deadline:
            batch = scenario.batches[position % len(scenario.batches)]
            scenario.session.run(OUTPUTS, batch.feeds())
            done[thread] += batch.rows
            position += scenario.runs

    start, cpu = time.perf_counter(), time.process_time()
    _in_threads(work, scenario.runs)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    sentences_done = sum(done)
    return {
        "sentences_per_s": sentences_done / wall,
        "cpu_ms_per_sentence": 1000.0 * cpu / sentences_done,
    }


def _in_threads(work: Callable[[int], None], count: int) -> None:
    threads = [threading.Thread(target=work, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        nargs="+",
        default=["bilstm-additive", (REPOSITORY / "default_model.txt").read_text().strip()],
        help="shipped models (default: bilstm-additive and the repository's default)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    started_on = machine()
    plans = {name: scenarios(REPOSITORY / name / "1") for name in dict.fromkeys(args.model)}
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        name: {s.name: [] for s in plan} for name, plan in plans.items()
    }
    for round_ in range(1, args.rounds + 1):
        for name, plan in plans.items():
            for scenario in plan:
                figures = measure(scenario, args.seconds)
                runs[name][scenario.name].append(figures)
                print(
                    f"round {round_} {name:<18} {scenario.name:<58} "
                    f"{figures['sentences_per_s']:8.0f} sentences/s  "
                    f"{figures['cpu_ms_per_sentence']:6.3f} CPU ms/sentence",
                    flush=True,
                )
    medians = {
        name: {
            scenario: {key: statistics.median(run[key] for run in rounds) for key in rounds[0]}
            for scenario, rounds in by_scenario.items()
        }
        for name, by_scenario in runs.items()
    }
    print(f"\nmedians of {args.rounds} rounds of {args.seconds:g} s:")
    for name, by_scenario in medians.items():
        for scenario_name, figures in by_scenario.items():
            print(
                f"{name:<18} {scenario_name:<58} {figures['sentences_per_s']:8.0f} sentences/s  "
                f"{figures['cpu_ms_per_sentence']:6.3f} CPU ms/sentence"
            )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ceiling.json").write_text(
        json.dumps(
            {
                "command": command_line("bench.ceiling"),
                "machine": started_on,
                "rounds": args.rounds,
                "seconds": args.seconds,
                "cores": CORES,
                "medians": medians,
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
