"""The inference server makes no outbound connection and writes nothing under $HOME: traced
with strace over its startup, a prediction over HTTP and one over gRPC, and the seconds after
(when ONNX Runtime's telemetry, unless turned off, looks its host up)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import grpc
import httpx
import pytest

from attnserve.service.grpc import attnserve_oip_pb2 as pb
from attnserve.service.oip.tensors import serialize_bytes
from bench.common import ATTNSERVE, REPO_ROOT
from bench.server_process import free_port

# connect() to an IPv4/IPv6 address: the address is what follows inet_addr/inet_pton
_CONNECT = re.compile(
    r'connect\(\d+, \{sa_family=AF_INET6?, .*?inet_(?:addr|pton)\((?:AF_INET6, )?"([^"]+)"'
)
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


@pytest.mark.skipif(
    shutil.which("strace") is None and not os.environ.get("CI"),
    reason="strace is not installed (apt-get install strace; CI installs it)",
)
def test_the_server_connects_nowhere_and_leaves_home_untouched(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    trace = tmp_path / "strace.log"
    port, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATTNSERVE_", "ORT_"))}
    env |= {"HOME": str(home), "ATTNSERVE_PORT": str(port), "ATTNSERVE_PROVIDERS": "cpu"}
    env |= {"ATTNSERVE_GRPC_PORT": str(grpc_port)}
    command = ["strace", "-f", "-qq", "-e", "trace=connect", "-o", str(trace), ATTNSERVE, "serve"]
    process = subprocess.Popen(
        command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "server not ready"
            time.sleep(0.2)
        answer = httpx.post(f"{url}/v1/predict", json={"text": "great"}, timeout=10)
        assert answer.status_code == 200
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            infer = channel.unary_unary(
                "/inference.GRPCInferenceService/ModelInfer",
                request_serializer=pb.ModelInferRequest.SerializeToString,
                response_deserializer=pb.ModelInferResponse.FromString,
            )
            text = pb.ModelInferRequest.InferInputTensor(name="text", datatype="BYTES", shape=[1])
            request = pb.ModelInferRequest(
                model_name="bilstm-additive",
                inputs=[text],
                raw_input_contents=[serialize_bytes([b"great"])],
            )
            assert infer(request, timeout=10).model_name == "bilstm-additive"
        time.sleep(8)  # ONNX Runtime's telemetry looked its host up within seconds of start
    finally:
        # the server, not strace: strace ends with the process it traces
        for child in _children(process.pid):
            os.kill(child, signal.SIGTERM)
        process.wait(timeout=60)

    peers = set(_CONNECT.findall(trace.read_text()))
    assert peers <= LOOPBACK, f"outbound connections to {sorted(peers - LOOPBACK)}"
    assert sorted(path.relative_to(home) for path in home.rglob("*")) == []


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return [
        int(child) for task in tasks.iterdir() for child in (task / "children").read_text().split()
    ]
