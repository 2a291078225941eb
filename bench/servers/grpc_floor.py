"""The gRPC floor: a bare `grpc.aio` server answering every `ModelInfer` with a constant
`ModelInferResponse` the size of attnserve's for a ten-token sentence (every output, in
`raw_output_contents`), on uvloop as `attnserve serve` runs.

No parsing, no model: what grpcio alone costs a call on this machine, the gRPC counterpart
of bench/servers/floor.py. Run by bench/grpc.py:

    python -m bench.servers.grpc_floor --port PORT
"""

from __future__ import annotations

import argparse

import grpc
import numpy as np
import uvloop

from attnserve.service.grpc import attnserve_oip_pb2 as pb
from attnserve.service.grpc.servicer import SERVICE
from attnserve.service.oip.tensors import serialize_bytes
from bench.servers.floor import TOKENS


def constant_answer() -> bytes:
    starts = np.array([[start for _, start, _ in TOKENS]], dtype="<i8")  # (1, T)
    ends = np.array([[end for _, _, end in TOKENS]], dtype="<i8")
    per_token = list(starts.shape)
    response = pb.ModelInferResponse(model_name="bilstm-additive", model_version="1")
    for name, datatype, shape, data in (
        ("label", "BYTES", [1], serialize_bytes([b"positive"])),
        ("probabilities", "FP32", [1, 2], np.array([[0.48747, 0.51253]], dtype="<f4").tobytes()),
        ("attention", "FP32", per_token, np.full(per_token, 0.1, dtype="<f4").tobytes()),
        ("token_start", "INT64", per_token, starts.tobytes()),
        ("token_end", "INT64", per_token, ends.tobytes()),
        ("truncated", "BOOL", [1], b"\x00"),
        ("readable", "FP32", [1], np.ones(1, dtype="<f4").tobytes()),
    ):
        response.outputs.add(name=name, datatype=datatype, shape=shape)
        response.raw_output_contents.append(data)
    return response.SerializeToString()


async def serve(port: int) -> None:
    answer = constant_answer()

    async def model_infer(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return answer

    server = grpc.aio.server()
    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(model_infer)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"ModelInfer": handler}),)
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    uvloop.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
