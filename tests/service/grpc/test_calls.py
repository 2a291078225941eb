"""The gRPC calls through a plain gRPC channel (the protocol's messages as any client builds
them): both ways of sending texts, what is refused and with which status, API keys, admission,
the deadline, the message size limit, request ids, Server-Timing and metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from attnserve.service.grpc import attnserve_oip_pb2 as pb
from attnserve.service.oip.tensors import serialize_bytes
from tests.service.grpc.conftest import Servers, serving

MODEL = "bilstm-additive"
TEXTS = ["The battery life is great", "Crème brûlée was awful"]


class Calls:
    """The service's calls over one channel; each returns (response, call) or raises RpcError."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)

    def __call__(self, method: str, request: Any, **kwargs: Any) -> tuple[Any, grpc.Call]:
        response_type = getattr(pb, type(request).__name__.replace("Request", "Response"))
        stub = self.channel.unary_unary(
            f"/inference.GRPCInferenceService/{method}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString,
        )
        response, call = stub.with_call(request, **kwargs)
        return response, call

    def refused(self, method: str, request: Any, **kwargs: Any) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as refusal:
            self(method, request, **kwargs)
        return refusal.value


@pytest.fixture(scope="module")
def calls(servers: Servers) -> Iterator[Calls]:
    client = Calls(servers.grpc)
    yield client
    client.channel.close()


def _infer(
    texts: list[str] = TEXTS, raw: bool = True, model: str = MODEL, **fields: Any
) -> pb.ModelInferRequest:
    text = pb.ModelInferRequest.InferInputTensor(name="text", datatype="BYTES", shape=[len(texts)])
    request = pb.ModelInferRequest(model_name=model, inputs=[text], **fields)
    if raw:
        request.raw_input_contents.append(serialize_bytes([t.encode() for t in texts]))
    else:
        request.inputs[0].contents.bytes_contents.extend(t.encode() for t in texts)
    return request


def _metadata(call: grpc.Call | grpc.RpcError) -> dict[str, str]:
    # pairs at run time, whatever the stubs say
    pairs: Any = call.trailing_metadata() or ()
    return {str(key): str(value) for key, value in pairs}


def test_typed_contents_answer_as_raw_contents_do(calls: Calls) -> None:
    raw, _ = calls("ModelInfer", _infer(raw=True))
    typed, _ = calls("ModelInfer", _infer(raw=False))

    assert [o.name for o in typed.outputs] == [o.name for o in raw.outputs]
    assert list(typed.raw_output_contents) == list(raw.raw_output_contents)


def test_a_request_id_is_echoed_and_stage_times_trail_the_answer(calls: Calls) -> None:
    _, call = calls("ModelInfer", _infer(), metadata=[("x-request-id", "order-42")])

    assert _metadata(call)["x-request-id"] == "order-42"
    stages = [part.split(";")[0] for part in _metadata(call)["server-timing"].split(", ")]
    assert stages == ["tokenize", "queue", "inference", "postprocess"]


def _bytes_input(shape: list[int], **contents: Any) -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="text", datatype="BYTES", shape=shape, contents=pb.InferTensorContents(**contents)
    )
    return pb.ModelInferRequest(model_name=MODEL, inputs=[tensor])


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        (_infer(model=""), grpc.StatusCode.NOT_FOUND, "No model named ''. Known models: "),
        (
            _infer(model_version="7"),
            grpc.StatusCode.NOT_FOUND,
            f"Model '{MODEL}' has no version '7'. Served versions: 1.",
        ),
        (
            pb.ModelInferRequest(model_name=MODEL),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Expected one input named 'text', datatype BYTES, shape [-1]; the request has "
            "inputs: none.",
        ),
        (
            _infer(raw_input_contents=[b""]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "raw_input_contents has 2 entries; there must be one per input (1).",
        ),
        (
            _bytes_input([1], fp32_contents=[1.0]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Input 'text' is BYTES: its data goes in contents.bytes_contents (or "
            "raw_input_contents), not contents.fp32_contents.",
        ),
        (
            _bytes_input([3], bytes_contents=[b"one", b"two"]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Input 'text' has shape [3], so 3 elements, but its data holds 2.",
        ),
        (
            _bytes_input([1], bytes_contents=[b"\xff"]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Input 'text': element 0 is not valid UTF-8 (invalid start byte at byte 0).",
        ),
        (
            _infer(outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="logits")]),
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Model '{MODEL}' has no output 'logits'; its outputs are label, probabilities, "
            "attention, token_start, token_end, truncated, readable.",
        ),
        (
            _infer(["x" * 5001]),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "Text at index 0 has 5001 characters, the limit is 5000.",
        ),
    ],
)
def test_bad_requests_are_refused_with_a_status_a_message_and_a_code(
    calls: Calls, request_: pb.ModelInferRequest, code: grpc.StatusCode, message: str
) -> None:
    refusal = calls.refused("ModelInfer", request_)

    assert refusal.code() == code
    assert str(refusal.details()).startswith(message)
    assert _metadata(refusal)["attnserve-error-code"]


def test_bytes_that_are_no_message_are_an_invalid_argument_not_a_server_error(
    calls: Calls,
) -> None:
    stub: grpc.UnaryUnaryMultiCallable[bytes, bytes] = calls.channel.unary_unary(
        "/inference.GRPCInferenceService/ModelInfer"
    )

    with pytest.raises(grpc.RpcError) as refusal:
        stub(b"\xff\xff\xff")

    assert refusal.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refusal.value.details() == (
        "The request is not a ModelInferRequest message of ModelInfer."
    )


def test_calls_other_than_the_protocols_are_unimplemented(calls: Calls) -> None:
    stub: grpc.UnaryUnaryMultiCallable[bytes, bytes] = calls.channel.unary_unary(
        "/inference.GRPCInferenceService/ModelStatistics"
    )

    with pytest.raises(grpc.RpcError) as refusal:
        stub(b"")

    assert refusal.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_calls_are_counted_by_method_model_and_code(calls: Calls, servers: Servers) -> None:
    def counted(method: str, model: str, code: str) -> float:
        exposition = httpx.get(f"{servers.http}/metrics").text
        series = (
            f'attnserve_grpc_requests_total{{code="{code}",method="{method}",model="{model}"}} '
        )
        lines = [line for line in exposition.splitlines() if line.startswith(series)]
        return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0

    before = counted("ModelInfer", MODEL, "OK"), counted("ModelInfer", "", "NOT_FOUND")
    calls("ModelInfer", _infer())
    calls.refused("ModelInfer", _infer(model="no-such-model"))
    after = counted("ModelInfer", MODEL, "OK"), counted("ModelInfer", "", "NOT_FOUND")

    assert (after[0] - before[0], after[1] - before[1]) == (1.0, 1.0)


def test_a_message_over_the_body_limit_is_refused_before_it_is_parsed(
    shipped_repository: Path,
) -> None:
    with serving(shipped_repository, max_body_bytes=4096) as running:
        calls = Calls(running.grpc)
        refusal = calls.refused("ModelInfer", _infer(["great " * 1000]))
        answered, _ = calls("ModelInfer", _infer(["great"]))
        calls.channel.close()

    assert refusal.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max (6" in str(refusal.details())
    assert answered.model_name == MODEL


def test_api_keys_guard_every_call_but_liveness_and_readiness(shipped_repository: Path) -> None:
    with serving(shipped_repository, api_keys="key-1,key-2") as running:
        calls = Calls(running.grpc)
        live, _ = calls("ServerLive", pb.ServerLiveRequest())
        ready, _ = calls("ServerReady", pb.ServerReadyRequest())
        missing = calls.refused("ModelMetadata", pb.ModelMetadataRequest(name=MODEL))
        not_bearer = calls.refused("ModelInfer", _infer(), metadata=[("authorization", "key-1")])
        wrong = calls.refused("ModelInfer", _infer(), metadata=[("authorization", "Bearer no")])
        allowed, _ = calls("ModelInfer", _infer(), metadata=[("authorization", "Bearer key-2")])
        calls.channel.close()

    assert live.live and ready.ready
    codes = [refusal.code() for refusal in (missing, not_bearer, wrong)]
    assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 2 + [grpc.StatusCode.PERMISSION_DENIED]
    assert wrong.details() == "The API key is not valid."
    assert allowed.model_name == MODEL


def test_a_full_queue_refuses_unavailable_with_retry_after(shipped_repository: Path) -> None:
    # Room for one text: while the first waits out its delay, no request of up to 64 fits.
    settings = {"batch_max_delay_ms": 1000, "batch_queue_texts": 64}
    with serving(shipped_repository, **settings) as running:
        calls = Calls(running.grpc)
        waiting = threading.Thread(
            target=lambda: httpx.post(
                f"{running.http}/v1/models/{MODEL}/predict", json={"text": "ok"}
            )
        )
        waiting.start()
        time.sleep(0.3)
        refusal = calls.refused("ModelInfer", _infer())
        waiting.join()
        after, _ = calls("ModelInfer", _infer())
        calls.channel.close()

    assert refusal.code() == grpc.StatusCode.UNAVAILABLE
    assert str(refusal.details()).startswith("The server is busy")
    assert _metadata(refusal) == {
        "x-request-id": _metadata(refusal)["x-request-id"],
        "attnserve-error-code": "overloaded",
        "retry-after": "1",
    }
    assert after.model_name == MODEL


def test_a_call_past_the_request_deadline_is_deadline_exceeded(shipped_repository: Path) -> None:
    with serving(shipped_repository, request_timeout_s=0.0001) as running:
        calls = Calls(running.grpc)
        live, _ = calls("ServerLive", pb.ServerLiveRequest())
        refusal = calls.refused("ModelInfer", _infer(["great"] * 64))
        calls.channel.close()

    assert live.live
    assert refusal.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert refusal.details() == "The request took longer than the limit of 0.0001 s."
