"""The inference server makes no outbound connection and writes no file: traced with strace
over its startup, a prediction over HTTP and one over gRPC, and the seconds after (when ONNX
Runtime's telemetry, unless turned off, looks its host up). `bench.soak --trace` checks the
same over ten minutes of load."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import grpc
import httpx
import pytest

from attnserve.service.grpc import attnserve_oip_pb2 as pb
from attnserve.service.oip.tensors import serialize_bytes
from bench.server_process import free_port, serve
from bench.syscall_trace import SyscallTrace


@pytest.mark.skipif(
    shutil.which("strace") is None and not os.environ.get("CI"),
    reason="strace is not installed (apt-get install strace; CI installs it)",
)
def test_the_server_connects_nowhere_and_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    log = tmp_path / "strace.log"
    grpc_port = free_port()
    # as in the image, Python writes no bytecode cache: what is left is the server's own writing
    environment = {"HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    environment["ATTNSERVE_GRPC_PORT"] = str(grpc_port)
    with serve(environment, ready_timeout_s=120, trace=log) as server:
        answer = httpx.post(f"{server.url}/v1/predict", json={"text": "great"}, timeout=10)
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

    trace = SyscallTrace.read(log)
    assert "openat(" in log.read_text(), "strace traced nothing: the check would be empty"
    assert trace.peers == frozenset(), f"outbound connections to {sorted(trace.peers)}"
    assert trace.written == frozenset(), f"files written: {sorted(trace.written)}"
    assert list(home.iterdir()) == []
