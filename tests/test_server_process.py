"""The real server process behind Uvicorn: limits, the request deadline, graceful shutdown.

A limit or a drain that holds in-process can fail behind Uvicorn, so each test here starts
`attnserve serve` as a subprocess on 127.0.0.1 and talks to it over sockets.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest

from attnserve.service.grpc import attnserve_oip_pb2 as pb
from attnserve.service.oip import signature
from attnserve.service.oip.tensors import serialize_bytes
from bench.common import ATTNSERVE, REPO_ROOT
from bench.server_process import ServerProcess, cpu_seconds, free_port, serve

BODY = json.dumps({"texts": ["The battery life is great but the screen is awful"] * 8}).encode()


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class RawRequest:
    """A POST over a bare socket, so a test controls when each byte of the body is sent."""

    def __init__(self, port: int, path: str, body: bytes, timeout_s: float = 30.0) -> None:
        self.body = body
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        )

    def send(self, part: bytes) -> None:
        self.sock.sendall(part)

    def response(self) -> RawResponse:
        """Reads until the server closes; the body must be exactly its Content-Length."""
        chunks = []
        while chunk := self.sock.recv(65536):
            chunks.append(chunk)
        self.sock.close()
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in header_lines)
        assert len(body) == int(headers["content-length"]), "response cut short"
        return RawResponse(int(status_line.split()[1]), headers, body)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    limits = {"ATTNSERVE_MAX_BODY_BYTES": "16384", "ATTNSERVE_REQUEST_TIMEOUT_S": "1"}
    with serve(limits) as running:
        yield running


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(server: ServerProcess) -> None:
    request = RawRequest(server.port, "/v1/predict", b"x" * 20000)  # headers only, no body

    response = request.response()

    assert response.status == 413
    assert json.loads(response.body)["error"] == {
        "code": "body_too_large",
        "message": "Request body is larger than the limit of 16384 bytes.",
        "details": {"limit": 16384},
    }


def test_a_chunked_body_over_the_limit_is_refused(server: ServerProcess) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(30):
            yield b"great " * 100

    response = httpx.post(
        f"{server.url}/v1/predict", content=chunks(), headers={"content-type": "application/json"}
    )

    assert response.request.headers["transfer-encoding"] == "chunked"
    assert (response.status_code, response.json()["error"]["code"]) == (413, "body_too_large")


def test_per_text_and_per_request_limits_state_the_limit(server: ServerProcess) -> None:
    long_text = httpx.post(f"{server.url}/v1/predict", json={"text": "a" * 5001})
    many = httpx.post(f"{server.url}/v1/predict", json={"texts": ["a"] * 65})

    assert (long_text.status_code, long_text.json()["error"]["details"]) == (
        413,
        {"index": 0, "length": 5001, "limit": 5000},
    )
    assert (many.status_code, many.json()["error"]["details"]) == (413, {"count": 65, "limit": 64})


def test_a_request_past_its_deadline_is_answered_503(server: ServerProcess) -> None:
    request = RawRequest(server.port, "/v1/predict", BODY)
    request.send(BODY[:10])  # ...and the rest never comes
    start = time.monotonic()

    response = request.response()

    assert 0.5 < time.monotonic() - start < 5
    assert (response.status, response.headers["retry-after"]) == (503, "1")
    assert json.loads(response.body)["error"] == {
        "code": "request_timeout",
        "message": "The request took longer than the limit of 1 s.",
        "details": {"limit_s": 1.0},
    }


def test_sigterm_finishes_in_flight_requests_then_exits_0() -> None:
    with serve({"ATTNSERVE_SHUTDOWN_GRACE_S": "20"}) as running:
        in_flight = [RawRequest(running.port, "/v1/predict", BODY) for _ in range(8)]
        for request in in_flight:
            request.send(BODY[:20])  # mid-body when the signal arrives
        time.sleep(0.2)

        running.process.terminate()
        time.sleep(0.5)
        refused = _connection_refused(running.port)
        for request in in_flight:
            request.send(BODY[20:])
        responses = [request.response() for request in in_flight]
        status = running.process.wait(timeout=20)

    assert refused, "the server still accepted connections after SIGTERM"
    assert [response.status for response in responses] == [200] * 8
    assert all(len(json.loads(r.body)["predictions"]) == 8 for r in responses)
    assert status == 0


def test_sigterm_cuts_what_outlives_the_grace_period_and_still_exits_0() -> None:
    with serve({"ATTNSERVE_SHUTDOWN_GRACE_S": "1"}) as running:
        stuck = RawRequest(running.port, "/v1/predict", BODY)
        stuck.send(BODY[:20])
        time.sleep(0.2)
        start = time.monotonic()

        running.process.terminate()
        status = running.process.wait(timeout=20)

    assert status == 0
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("workers", [1, 2])
def test_no_request_is_lost_or_cut_while_the_server_shuts_down(workers: int) -> None:
    results: list[str] = []
    stop = threading.Event()

    def client(url: str) -> None:
        # A new connection per request, as a load balancer would open them.
        while not stop.is_set():
            try:
                response = httpx.post(
                    f"{url}/v1/predict",
                    content=BODY,
                    headers={"content-type": "application/json", "connection": "close"},
                    timeout=30,
                )
            except httpx.ConnectError:
                results.append("refused")  # the listener is closed: nothing was sent
                time.sleep(0.01)
                continue
            except httpx.ReadError as error:
                # Reset with no byte of answer: a connection still in the kernel's accept
                # queue when the listener closed. The server never read it (see
                # RELIABILITY.md); an accepted request cut short would be a
                # RemoteProtocolError or a short body instead.
                results.append("reset-unaccepted" if "reset" in str(error) else f"lost: {error!r}")
                continue
            except httpx.HTTPError as error:
                results.append(f"lost: {error!r}")
                continue
            body_ok = response.status_code == 200 and len(response.json()["predictions"]) == 8
            results.append("ok" if body_ok else f"bad: {response.status_code}")

    grace = {"ATTNSERVE_SHUTDOWN_GRACE_S": "20"}
    with serve(grace, arguments=["--workers", str(workers)]) as running:
        threads = [threading.Thread(target=client, args=(running.url,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while results.count("ok") < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        running.process.terminate()
        status = running.process.wait(timeout=30)
        time.sleep(0.2)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    counts = {kind: results.count(kind) for kind in sorted(set(results))}
    print(f"\nshutdown under load, {workers} worker(s): {len(results)} requests: {counts}")
    failures = [r for r in results if r not in ("ok", "refused", "reset-unaccepted")]
    assert failures == []
    assert results.count("ok") >= 10
    assert "refused" in results  # the shutdown happened while requests were being sent
    assert status == 0


def _connection_refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def _serve_until_exit(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTNSERVE_")}
    env |= {"ATTNSERVE_PORT": str(free_port()), "ATTNSERVE_PROVIDERS": "cpu", **environment}
    return subprocess.run(
        [ATTNSERVE, "serve"], env=env, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )


def test_a_repository_with_no_usable_model_fails_fast_with_the_reason(
    shipped_model_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / shipped_model_dir.parent.name / shipped_model_dir.name
    shutil.copytree(shipped_model_dir, broken)
    (broken / "tokenizer.json").unlink()

    done = _serve_until_exit({"ATTNSERVE_MODEL_REPOSITORY": str(tmp_path)})

    assert done.returncode == 3
    assert f"No usable model in {tmp_path}: {broken.parent.name}: tokenizer.json is missing" in (
        done.stderr
    )


def test_an_unreadable_key_file_stops_serve_with_a_clear_message(tmp_path: Path) -> None:
    done = _serve_until_exit({"ATTNSERVE_API_KEYS_FILE": str(tmp_path / "missing")})

    assert done.returncode == 1
    assert done.stderr.startswith(f"error: ATTNSERVE_API_KEYS_FILE {tmp_path / 'missing'}: ")


def test_sigterm_drains_grpc_calls_in_flight_and_takes_no_new_one() -> None:
    grpc_port = free_port()
    environment = {
        "ATTNSERVE_GRPC_PORT": str(grpc_port),
        "ATTNSERVE_SHUTDOWN_GRACE_S": "20",
        # a batch waits this long for more texts: the call is in flight for as long
        "ATTNSERVE_BATCH_MAX_DELAY_MS": "1500",
    }
    request = pb.ModelInferRequest(
        model_name="bilstm-additive",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="text", datatype="BYTES", shape=[1])],
        raw_input_contents=[serialize_bytes([b"The battery life is great"])],
    )
    with (
        serve(environment) as running,
        grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel,
    ):
        infer = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        in_flight = infer.future(request, timeout=60)
        time.sleep(0.3)
        still_running = not in_flight.done()

        running.process.terminate()
        time.sleep(0.5)
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as late:
            live: grpc.UnaryUnaryMultiCallable[bytes, bytes] = late.unary_unary(
                "/inference.GRPCInferenceService/ServerLive"
            )
            with pytest.raises(grpc.RpcError) as refused:
                live(b"", timeout=5)
        answer = in_flight.result()
        status = running.process.wait(timeout=30)

    assert still_running, "the call was answered before SIGTERM: nothing was drained"
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert answer.model_name == "bilstm-additive"
    assert [output.name for output in answer.outputs] == signature.output_names(has_attention=True)
    assert len(answer.raw_output_contents) == len(answer.outputs)
    assert status == 0


def test_a_grpc_port_already_taken_stops_serve_with_the_reason() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        done = _serve_until_exit({"ATTNSERVE_GRPC_PORT": str(port)})

    assert done.returncode == 3
    assert f"gRPC cannot listen on 127.0.0.1:{port}" in done.stderr


def test_cpu_seconds_counts_what_a_process_computed_not_how_long_it_lived() -> None:
    spin = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass\n"
    wait = "print('ready', flush=True)\ninput()\n"
    busy, idle = (
        subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for code in (spin + wait, wait)
    )
    try:
        for process in (busy, idle):
            assert process.stdout is not None and process.stdout.readline() == "ready\n"
        assert cpu_seconds(busy.pid) >= 0.5
        assert cpu_seconds(idle.pid) < 0.4
    finally:
        for process in (busy, idle):
            process.kill()
            process.wait()
