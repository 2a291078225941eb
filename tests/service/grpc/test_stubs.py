"""The generated messages are those of the committed .proto, and on the wire they are the
protocol's: every message has the fields, with their names, numbers and types, that Triton's
client sends and reads (tritonclient.grpc's own generated `inference.*` messages)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor
from tritonclient.grpc import service_pb2 as triton

from attnserve.service.grpc import attnserve_oip_pb2 as ours

PROTO = Path(ours.__file__).with_name("attnserve_oip.proto")
MESSAGES = [
    "ServerLiveRequest",
    "ServerLiveResponse",
    "ServerReadyRequest",
    "ServerReadyResponse",
    "ModelReadyRequest",
    "ModelReadyResponse",
    "ServerMetadataRequest",
    "ServerMetadataResponse",
    "ModelMetadataRequest",
    "ModelMetadataResponse",
    "ModelInferRequest",
    "ModelInferResponse",
    "InferParameter",
    "InferTensorContents",
]


def test_the_generated_module_is_the_proto_compiled(tmp_path: Path) -> None:
    compiled = tmp_path / "descriptor.pb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO.parent}",
            f"--descriptor_set_out={compiled}",
            PROTO.name,
        ],
        check=True,
    )
    [from_proto] = descriptor_pb2.FileDescriptorSet.FromString(compiled.read_bytes()).file
    _clear_json_names(from_proto.message_type)  # derived from the names; not in the module
    generated = descriptor_pb2.FileDescriptorProto.FromString(ours.DESCRIPTOR.serialized_pb)

    assert generated == from_proto, "run `make grpc-stubs`: the stubs are older than the .proto"


def _clear_json_names(messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
    for message in messages:
        for field in message.field:
            field.ClearField("json_name")
        _clear_json_names(message.nested_type)


def _fields(message: Descriptor, prefix: str = "") -> dict[str, tuple[int, int, bool]]:
    """Every field of a message and of its nested messages: number, type, repeated."""
    fields = {}
    for field in message.fields:
        fields[prefix + field.name] = (field.number, field.type, field.is_repeated)
        if field.message_type is not None and field.message_type.name != "InferParameter":
            fields |= _fields(field.message_type, f"{prefix}{field.name}.")
    return fields


@pytest.mark.parametrize("name", MESSAGES)
def test_each_message_has_the_protocols_fields(name: str) -> None:
    expected = _fields(triton.DESCRIPTOR.message_types_by_name[name])
    got = _fields(ours.DESCRIPTOR.message_types_by_name[name])

    assert got == expected
