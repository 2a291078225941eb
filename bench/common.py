"""What the benchmark scripts share: paths, the sentences they send, the machine they ran on."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results"
DEFAULT_MODEL_DIR = REPO_ROOT / "model_repository" / "bilstm-additive" / "1"
DEFAULT_RUN_DIR = REPO_ROOT / "runs" / "bilstm-additive"
DATA = REPO_ROOT / "data" / "sentiment-labelled-sentences" / "amazon_cells_labelled.txt"
ATTNSERVE = str(Path(sys.executable).parent / "attnserve")


def sentences() -> list[str]:
    """The amazon review sentences, in file order: real text of realistic lengths."""
    lines = DATA.read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[0] for line in lines if "\t" in line]


def ensure_run(run_dir: Path) -> None:
    """The naive server and the PyTorch side need the trained run; train it (seed 13) if absent."""
    if not (run_dir / "checkpoint.pt").exists():
        subprocess.run([ATTNSERVE, "train", "--run-dir", str(run_dir)], cwd=REPO_ROOT, check=True)


def machine() -> dict[str, str]:
    """Where and when: CPU model, cores, OS, Python, the time (UTC) and the load (1/5/15 min)."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": " ".join(f"{load:.1f}" for load in os.getloadavg()),
    }
