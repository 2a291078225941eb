"""What the benchmark scripts share: paths, the sentences they send, the machine they ran on."""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from attnserve.artifact.data import UCI_LABELS
from attnserve.service.providers import CPUINFO, cpu_flags

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results"
DEFAULT_MODEL_DIR = REPO_ROOT / "model_repository" / "bilstm-additive" / "1"
DEFAULT_RUN_DIR = REPO_ROOT / "runs" / "bilstm-additive"
DATA = REPO_ROOT / "data" / "sentiment-labelled-sentences" / "amazon_cells_labelled.txt"
ATTNSERVE = str(Path(sys.executable).parent / "attnserve")
# The training data of the comparisons, relative as `attnserve train` records them (so exported
# manifests hold in any checkout), and the split seed of every shipped model.
TRAINING_DATA = [
    Path("data/sentiment-labelled-sentences/amazon_cells_labelled.txt"),
    Path("data/sentiment-labelled-sentences/yelp_labelled.txt"),
]
# the UCI files' 0 and 1, named as the shipped models' manifests name them
TRAINING_LABELS = list(UCI_LABELS.values())
SPLIT_SEED = 13
SIMD_FLAGS = {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"}


def command_line(module: str) -> str:
    """How this run was started, as a shell would take it back: `python -m MODULE ARGS`."""
    return shlex.join(["python", "-m", module, *sys.argv[1:]])


def setting(text: str) -> tuple[str, str]:
    """An `ATTNSERVE_NAME=VALUE` argument, as (name, value)."""
    name, equals, value = text.partition("=")
    if not name.startswith("ATTNSERVE_") or not equals:
        raise argparse.ArgumentTypeError(f"{text!r} is not ATTNSERVE_NAME=VALUE")
    return name, value


def sentences() -> list[str]:
    """The amazon review sentences, in file order: real text of realistic lengths."""
    lines = DATA.read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[0] for line in lines if "\t" in line]


def ensure_run(run_dir: Path, architecture: str = "bilstm-additive") -> None:
    """The naive server and the PyTorch side need the trained run; train it (seed 13) if absent."""
    if not (run_dir / "checkpoint.pt").exists():
        command = [ATTNSERVE, "train", "--architecture", architecture, "--run-dir", str(run_dir)]
        subprocess.run(command, cwd=REPO_ROOT, check=True)


def machine() -> dict[str, str]:
    """Where and when: CPU model, cores, OS, Python, the time (UTC) and the load (1/5/15 min)."""
    cpu = platform.processor() or "unknown"
    try:
        for line in CPUINFO.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = cpu_flags()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": " ".join(f"{load:.1f}" for load in os.getloadavg()),
        # int8 inference is fast only with dot-product instructions (VNNI)
        "simd": " ".join(sorted(flags & SIMD_FLAGS)) or "none listed",
    }


# Figures by scenario, then by server (or protocol), one dict a round.
Runs = dict[str, dict[str, list[dict[str, Any]]]]


def median_figures(runs: Runs, summed: str, dropped: tuple[str, ...] = ()) -> dict[str, Any]:
    """Each figure's median over the rounds, by scenario and server; `summed` (a count of
    failures) added up over them instead, and `dropped` left out."""
    return {
        scenario: {
            name: {
                key: statistics.median(run[key] for run in rounds)
                for key in rounds[0]
                if key != summed and key not in dropped
            }
            | {summed: sum(run[summed] for run in rounds)}
            for name, rounds in servers.items()
        }
        for scenario, servers in runs.items()
    }
