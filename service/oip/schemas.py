"""The protocol's JSON objects, as the specification names them (inference_rest.md).

Unknown fields are ignored rather than refused, as other servers of the protocol do.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from attnserve.service.errors import ServiceError

# A parameter's value is a bool, a number or a string.
Parameters = dict[str, bool | int | float | str]
# Tensor data: flat or nested in row-major order.
TensorData = list[Any]


class ServerLive(BaseModel):
    live: Literal[True] = True


class ServerReady(BaseModel):
    ready: Literal[True] = True


class ModelReady(BaseModel):
    name: str
    ready: Literal[True] = True


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class MetadataTensor(BaseModel):
    name: str
    datatype: str = Field(description="BYTES, FP32, INT64, BOOL, ...")
    shape: list[int] = Field(description="-1 for a dimension of variable size.")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class RequestInput(BaseModel):
    """One input tensor; its data is in `data`, or in the binary part of the body."""

    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: TensorData | None = None


class RequestOutput(BaseModel):
    """An output asked for; `parameters.binary_data` asks for it in the binary part."""

    name: str
    parameters: Parameters | None = None


class InferenceRequest(BaseModel):
    """The request's JSON object (the whole body, or its first Inference-Header-Content-Length
    bytes when tensors follow in binary)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "42",
                    "inputs": [
                        {
                            "name": "text",
                            "shape": [2],
                            "datatype": "BYTES",
                            "data": ["Loved it!", "Awful."],
                        }
                    ],
                    "outputs": [{"name": "label"}, {"name": "probabilities"}],
                }
            ]
        },
    )

    id: str | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: TensorData | None = Field(
        default=None, description="Absent when the tensor is in the binary part of the body."
    )


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


class ProtocolErrorBody(BaseModel):
    """The body of every non-200 answer of a /v2 route."""

    error: str


def protocol_error_body(error: ServiceError) -> dict[str, Any]:
    """`ProtocolErrorBody` as the JSON it is sent as: the protocol has room for a message only."""
    return {"error": error.message}
