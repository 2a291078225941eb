"""`attnserve serve --workers N`: several processes answer on one port and stop cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from bench.common import ATTNSERVE
from tests.conftest import REPO_ROOT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_two_workers_answer_and_stop_on_sigterm(shipped_repository: Path) -> None:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ATTNSERVE_")},
        "ATTNSERVE_MODEL_REPOSITORY": str(shipped_repository),
        "ATTNSERVE_PROVIDERS": "cpu",
        "ATTNSERVE_LOG_LEVEL": "info",
    }
    process = subprocess.Popen(
        [ATTNSERVE, "serve", "--workers", "2", "--port", str(port)],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        answer = None
        while answer is None:
            assert process.poll() is None, "server exited during startup"
            assert time.monotonic() < deadline, "not ready within 60 s"
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/v1/predict", json={"text": "Great"})
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer.status_code == 200
        assert answer.json()["predictions"][0]["tokens"][0]["text"] == "Great"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)

    assert process.returncode == 0, output
    # Each worker process loaded the models itself.
    assert output.count('"event": "ready"') == 2, output
