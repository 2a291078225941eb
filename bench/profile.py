"""Where a served request's time goes: py-spy samples attnserve while wrk drives it.

    .venv/bin/python -m bench.profile [--connections 32] [--seconds 10]

Samples only the thread holding the GIL (`py-spy record --gil`): the event loop's Python
work, which is what limits requests/s once inference is batched. Prints the share of samples
per layer (each sample counted once, under the innermost layer it is in) and the top
functions, and writes bench/results/profile.json. Needs py-spy (the bench extra) and wrk.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.common import ATTNSERVE, DEFAULT_MODEL_DIR, RESULTS, command_line, machine
from bench.http import LUA, running, write_bodies

# Innermost match wins: a frame in service/batching.py under fastapi's routing is batching.
LAYERS = [
    ("batching (service/batching.py)", "service/batching.py"),
    ("inference hand-off (service/inference.py, threads)", "service/inference.py"),
    ("tokenisation (artifact/tokenizer.py)", "artifact/tokenizer.py"),
    ("predictor (service/predictor.py)", "service/predictor.py"),
    ("pydantic (request validation, response JSON)", "pydantic"),
    ("routes and error handling (service/)", "service/"),
    ("FastAPI / Starlette (routing, middleware, dependencies)", "fastapi/"),
    ("FastAPI / Starlette (routing, middleware, dependencies)", "starlette/"),
    ("uvicorn (HTTP parsing, transport)", "uvicorn/"),
    ("asyncio / threads", "asyncio/"),
    ("asyncio / threads", "threading.py"),
    ("asyncio / threads", "concurrent/"),
    ("asyncio / threads", "anyio/"),
]


def layer_of(stack: list[str]) -> str:
    for frame in reversed(stack):
        for name, marker in LAYERS:
            if marker in frame:
                return name
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--texts", type=int, choices=(1, 64), default=1, help="per request")
    args = parser.parse_args()
    started_on = machine()
    py_spy = Path(sys.executable).parent / "py-spy"
    scratch = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    bodies = write_bodies(scratch)["text" if args.texts == 1 else "texts64"]
    raw = scratch / "profile.txt"
    env = {
        "ATTNSERVE_LOG_LEVEL": "warning",
        "ATTNSERVE_MODEL_REPOSITORY": str(DEFAULT_MODEL_DIR.parent.parent),
    }
    with running([ATTNSERVE, "serve"], env) as server:
        wrk = ["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds + 3}s"]
        load = subprocess.Popen(
            [*wrk, "-s", str(LUA), server.url],
            env={"BODIES": str(bodies)},
            stdout=subprocess.DEVNULL,
        )
        time.sleep(1)
        record = ["record", "--gil", "-p", str(server.pid), "-d", str(args.seconds), "-f", "raw"]
        subprocess.run(
            [str(py_spy), *record, "-o", str(raw)],
            check=True,
            capture_output=True,
        )
        load.wait()
    layers: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack_text, count_text = line.rsplit(" ", 1)
        stack, count = stack_text.split(";"), int(count_text)
        total += count
        layers[layer_of(stack)] += count
        functions[stack[-1]] += count
    print(
        f"{total} samples of the thread holding the GIL, {args.connections} connections, "
        f"{args.texts} text(s) per request"
    )
    for name, count in layers.most_common():
        print(f"{count / total:6.1%}  {name}")
    print("top functions (self):")
    for name, count in functions.most_common(12):
        print(f"{count / total:6.1%}  {name}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"profile-{args.texts}.json").write_text(
        json.dumps(
            {
                "command": command_line("bench.profile"),
                "machine": started_on,
                "samples": total,
                "layers": {name: count / total for name, count in layers.most_common()},
                "top_functions": {n: c / total for n, c in functions.most_common(12)},
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
