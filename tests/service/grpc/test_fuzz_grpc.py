"""Property-based fuzzing of the gRPC service (hypothesis): generated ModelInferRequests, from
well-formed to absurd, and arbitrary bytes to every method.

Every answer must be OK or a refusal a client can act on (INVALID_ARGUMENT, NOT_FOUND,
RESOURCE_EXHAUSTED) with a message and no stack trace: never UNKNOWN, INTERNAL or UNAVAILABLE.
At the end the number of calls and their status codes are printed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnserve.service.grpc import attnserve_oip_pb2 as pb
from attnserve.service.oip.tensors import serialize_bytes
from tests.service.grpc.conftest import Servers

MODEL = "bilstm-additive"
ACCEPTABLE = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
METHODS = [
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelInfer",
]
CODES: Counter[str] = Counter()

FUZZ = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


@pytest.fixture(scope="module")
def channel(servers: Servers) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(servers.grpc) as channel:
        yield channel
    print(f"\ngrpc fuzz: {sum(CODES.values())} calls; codes {dict(sorted(CODES.items()))}")
    assert CODES["OK"] > sum(CODES.values()) / 20, CODES  # real answers ran, not only refusals


def _call(channel: grpc.Channel, method: str, request: bytes) -> None:
    stub: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        f"/inference.GRPCInferenceService/{method}"
    )
    try:
        stub(request, timeout=30)
        code = grpc.StatusCode.OK
    except grpc.RpcError as error:
        code = error.code()
        details = error.details() or ""
        assert details, code
        assert "Traceback" not in details and "site-packages" not in details
    CODES[code.name] += 1
    assert code in ACCEPTABLE, (method, request[:200])


def _parameter(value: bool | int | str | float) -> pb.InferParameter:
    if isinstance(value, bool):
        return pb.InferParameter(bool_param=value)
    if isinstance(value, int):
        return pb.InferParameter(int64_param=value)
    if isinstance(value, str):
        return pb.InferParameter(string_param=value)
    return pb.InferParameter(double_param=value)


parameters = st.dictionaries(
    st.sampled_from(["binary_data", "binary_data_size", "classification", "shared_memory_region"])
    | st.text(max_size=8),
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=12)
    | st.floats(allow_nan=True),
    max_size=2,
).map(lambda values: {key: _parameter(value) for key, value in values.items()})
# Mostly a few texts, real or of any characters; sometimes about as many as a request may carry.
text = st.sampled_from(["Great phone.", "It died in a day", "Crème brûlée 😀, שלום"]) | st.text(
    max_size=40
)
texts = st.lists(text, max_size=8) | st.lists(text, min_size=60, max_size=70)


# The parts of a request the fuzz may get wrong, a few at a time (or none).
PARTS = ["model", "version", "inputs", "name", "datatype", "shape", "parameters", "data", "outputs"]


@st.composite
def infer_requests(draw: st.DrawFn) -> bytes:
    """Requests of one `text` input of generated texts, half of them with parts gone wrong."""
    wrong = draw(st.just(set()) | st.sets(st.sampled_from(PARTS), min_size=1, max_size=3))

    def part(name: str, right: st.SearchStrategy[Any], off: st.SearchStrategy[Any]) -> Any:
        return draw(off if name in wrong else right)

    batch = draw(texts)
    tensor = pb.ModelInferRequest.InferInputTensor(
        name=part("name", st.just("text"), st.sampled_from(["TEXT", "", "texts"])),
        datatype=part("datatype", st.just("BYTES"), st.sampled_from(["FP32", "INT64", "bytes"])),
        shape=part("shape", st.just([len(batch)]), st.lists(st.integers(-2, 70), max_size=3)),
        parameters=part("parameters", st.just({}), parameters),
    )
    encoded = [text.encode("utf-8", "surrogatepass") for text in batch]
    raw: list[bytes] = []
    if draw(st.booleans()):
        raw = [serialize_bytes(encoded), *part("data", st.just([]), st.lists(st.binary()))]
    else:
        tensor.contents.bytes_contents.extend(encoded)
        tensor.contents.fp32_contents.extend(
            part("data", st.just([]), st.lists(st.floats(width=32), min_size=1))
        )
    names = st.sampled_from(["label", "attention", "token_end"])
    outputs = [
        pb.ModelInferRequest.InferRequestedOutputTensor(
            name=name, parameters=part("outputs", st.just({}), parameters)
        )
        for name in part(
            "outputs",
            st.lists(names, unique=True, max_size=3),
            st.lists(names | st.just("logits"), min_size=1, max_size=4),
        )
    ]
    request = pb.ModelInferRequest(
        model_name=part("model", st.just(MODEL), st.sampled_from(["no-such-model", ""])),
        model_version=part("version", st.sampled_from(["", "1"]), st.sampled_from(["2", "x"])),
        id=draw(st.text(max_size=8)),
        parameters=part("parameters", st.just({}), parameters),
        inputs=part("inputs", st.just([tensor]), st.lists(st.just(tensor), max_size=3)),
        outputs=outputs,
        raw_input_contents=raw,
    )
    return request.SerializeToString()


@FUZZ
@given(request=infer_requests())
def test_no_inference_request_makes_the_service_fail(channel: grpc.Channel, request: bytes) -> None:
    _call(channel, "ModelInfer", request)


@settings(FUZZ, max_examples=50)
@given(method=st.sampled_from(METHODS), request=st.binary(max_size=64))
def test_no_bytes_make_any_call_fail(channel: grpc.Channel, method: str, request: bytes) -> None:
    _call(channel, method, request)
