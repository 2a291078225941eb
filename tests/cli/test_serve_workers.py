"""`attnserve serve`: several processes answer on one port (and one gRPC port) and stop
cleanly; every line a server writes is JSON."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import httpx

from attnserve.service.grpc import attnserve_oip_pb2 as pb
from bench.common import ATTNSERVE
from tests.conftest import REPO_ROOT, attnserve_serve


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_two_workers_answer_and_stop_on_sigterm(shipped_repository: Path) -> None:
    port, grpc_port = _free_port(), _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ATTNSERVE_")},
        "ATTNSERVE_MODEL_REPOSITORY": str(shipped_repository),
        "ATTNSERVE_PROVIDERS": "cpu",
        "ATTNSERVE_LOG_LEVEL": "info",
    }
    process = subprocess.Popen(
        [ATTNSERVE, "serve", "--workers", "2", "--port", str(port), "--grpc-port", str(grpc_port)],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    output_lines: list[str] = []
    both_ready = threading.Event()

    def read_output(stream: Any) -> None:
        ready = 0
        for line in stream:
            output_lines.append(line)
            ready += json.loads(line).get("event") == "ready"
            if ready == 2:
                both_ready.set()

    reader = threading.Thread(target=read_output, args=(process.stdout,), daemon=True)
    reader.start()
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
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            model = channel.unary_unary(
                "/inference.GRPCInferenceService/ModelMetadata",
                request_serializer=pb.ModelMetadataRequest.SerializeToString,
                response_deserializer=pb.ModelMetadataResponse.FromString,
            )
            metadata = model(pb.ModelMetadataRequest(name="bilstm-additive"), timeout=30)
        assert metadata.inputs[0].name == "text"
        # one worker answered; the other may still be loading on a busy machine
        assert both_ready.wait(timeout=max(1.0, deadline - time.monotonic())), output_lines
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        reader.join(timeout=10)

    output = "".join(output_lines)
    assert process.returncode == 0, output
    events = json_lines(output)
    # Each worker process loaded the models itself.
    assert [event["logger"] for event in events].count("attnserve.service.app") >= 2
    assert len([event for event in events if event["event"] == "ready"]) == 2, output
    # ...and serves gRPC on the one port (SO_REUSEPORT).
    assert len([event for event in events if event["event"] == "grpc_listening"]) == 2, output
    # uvicorn's supervisor and workers speak JSON too
    said = {(event["logger"], event["event"].split(" [")[0]) for event in events}
    for line in ("Started parent process", "Started server process", "Stopping parent process"):
        assert ("uvicorn.error", line) in said, said


def test_a_server_writes_only_json_lines(shipped_repository: Path, tmp_path: Path) -> None:
    """uvicorn's own lines (start, address, shutdown) go through the service's JSON format."""
    log = tmp_path / "stderr"
    with attnserve_serve(shipped_repository, log, ATTNSERVE_LOG_LEVEL="info") as url:
        assert httpx.post(f"{url}/v1/predict", json={"text": "Great"}).status_code == 200
        assert httpx.get(f"{url}/no/such/route").status_code == 404

    events = json_lines(log.read_text("utf-8"))
    said = {(event["logger"], event["event"].split(" [")[0]) for event in events}
    assert ("uvicorn.error", "Started server process") in said, said
    assert ("uvicorn.error", "Application startup complete.") in said, said
    assert ("uvicorn.error", "Shutting down") in said, said
    running = [event["event"] for event in events if event["event"].startswith("Uvicorn running")]
    assert running == [f"Uvicorn running on {url} (Press CTRL+C to quit)"]
    assert ("attnserve.service.app", "ready") in said
    assert all("color_message" not in event for event in events)


def json_lines(output: str) -> list[dict[str, Any]]:
    """Each line of `output` as the JSON object it must be: time, level, logger, event."""
    events = []
    for line in output.splitlines():
        event = json.loads(line)
        assert {"time", "level", "logger", "event"} <= event.keys(), line
        events.append(event)
    assert events, "nothing was logged"
    return events
