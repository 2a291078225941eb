"""Garbage-collection pauses while serving, with what startup loaded frozen (as served) and not.

    .venv/bin/python -m bench.gc_pauses [--requests 600]

Serves the shipped repository in-process (FastAPI's TestClient, the app's real lifespan) and
sends `requests` requests of 64 review sentences to /v1/predict, timing every collection of
each generation with `gc.callbacks`. Then the same with the app's `gc.freeze()` undone right
after startup. A full (generation 2) collection stops the event loop for as long as it
takes, so its pause is what queued requests wait behind. Prints the figures.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from typing import Any

from fastapi.testclient import TestClient

from attnserve.service.app import create_app
from attnserve.service.settings import Settings
from bench.load import request_body


def pauses_ms(requests: int, frozen: bool) -> dict[int, list[float]]:
    """Each generation's collection times (ms) while serving `requests` 64-text requests."""
    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started: list[float] = []

    def timer(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        else:
            pauses[info["generation"]].append((time.perf_counter() - started.pop()) * 1000)

    body = request_body(64)
    with TestClient(create_app(Settings())) as client:
        if not frozen:
            gc.unfreeze()
        gc.callbacks.append(timer)
        try:
            for _ in range(requests):
                response = client.post(
                    "/v1/predict", content=body, headers={"content-type": "application/json"}
                )
                response.raise_for_status()
        finally:
            gc.callbacks.remove(timer)
            gc.freeze()  # the lifespan's shutdown unfreezes: leave it what it expects
    return pauses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    args = parser.parse_args()
    for frozen in (True, False):
        print(f"startup's objects {'frozen (as served)' if frozen else 'not frozen'}:")
        for generation, times in pauses_ms(args.requests, frozen).items():
            if times:
                print(
                    f"  generation {generation}: {len(times):5d} collections, median "
                    f"{statistics.median(times):6.2f} ms, max {max(times):6.2f} ms"
                )


if __name__ == "__main__":
    main()
