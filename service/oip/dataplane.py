"""The protocol's operations over the model registry; `routes.py` only translates HTTP.

Inference calls the same `Predictor.predict` as /v1, so both protocols give the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from pydantic import ValidationError

from attnserve.service.errors import InvalidInferenceRequest, ModelVersionNotFound
from attnserve.service.oip import binary, signature
from attnserve.service.oip.schemas import (
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    Parameters,
    RequestInput,
    ResponseOutput,
    ServerMetadata,
)
from attnserve.service.oip.tensors import Tensor, deserialize_bytes, flatten_json
from attnserve.service.predictions import Predictions
from attnserve.service.predictor import Predictor
from attnserve.service.registry import ModelRegistry

EXTENSIONS = ["binary_tensor_data"]
# Parameters of other servers' extensions that attnserve cannot honour: refused, not ignored.
_UNSUPPORTED = ("shared_memory_region", "classification")


@dataclass(frozen=True)
class EncodedInference:
    """The predictions of an inference request, encoded as its response and content headers."""

    predictions: Predictions
    body: bytes
    headers: dict[str, str]


def server_metadata() -> ServerMetadata:
    try:
        server_version = version("attnserve")
    except PackageNotFoundError:  # run from a checkout that was never installed
        server_version = "unknown"
    return ServerMetadata(name="attnserve", version=server_version, extensions=EXTENSIONS)


def predictor_for(registry: ModelRegistry, name: str, model_version: str | None) -> Predictor:
    """The named model's predictor; a version, when given, must be the one served."""
    predictor = registry.get(name)
    if model_version is not None and model_version != predictor.manifest.version:
        raise ModelVersionNotFound(name, model_version, [predictor.manifest.version])
    return predictor


def model_metadata(predictor: Predictor) -> ModelMetadata:
    manifest = predictor.manifest
    return ModelMetadata(
        name=manifest.name,
        versions=[manifest.version],
        platform=signature.PLATFORM,
        inputs=[signature.input_tensor()],
        outputs=signature.output_tensors(manifest.labels, manifest.has_attention),
    )


def output_names(predictor: Predictor) -> list[str]:
    """The model's outputs, in the order of its metadata (and of an answer asking for all)."""
    return signature.output_names(predictor.manifest.has_attention)


def output_tensors(predictor: Predictor, predictions: Predictions) -> dict[str, Tensor]:
    """Every output of the model for `predictions`, by name."""
    tensors = signature.to_tensors(predictions, predictor.manifest.has_attention)
    return {tensor.name: tensor for tensor in tensors}


async def infer(predictor: Predictor, body: bytes, header_length: str | None) -> EncodedInference:
    """Texts from the request's BYTES input -> predictor -> the requested output tensors."""
    header, binary_part = binary.split_body(body, header_length)
    request = _parse(header)
    texts = _texts(request.inputs, binary_part)
    manifest = predictor.manifest
    requested = _requested_outputs(request, output_names(predictor), manifest.name)

    predictions = await predictor.predict(texts)

    tensors = output_tensors(predictor, predictions)
    outputs = []
    parts = []
    for name, as_binary in requested:
        tensor = tensors[name]
        if as_binary:
            data = tensor.binary_data()
            parts.append(data)
            outputs.append(
                ResponseOutput(
                    name=name,
                    shape=tensor.shape,
                    datatype=tensor.datatype,
                    parameters={"binary_data_size": len(data)},
                )
            )
        else:
            outputs.append(
                ResponseOutput(
                    name=name, shape=tensor.shape, datatype=tensor.datatype, data=tensor.json_data()
                )
            )
    response = InferenceResponse(
        model_name=manifest.name, model_version=manifest.version, id=request.id, outputs=outputs
    )
    encoded, headers = binary.join_body(response.model_dump_json(exclude_none=True).encode(), parts)
    return EncodedInference(predictions, encoded, headers)


def _parse(header: bytes) -> InferenceRequest:
    try:
        return InferenceRequest.model_validate_json(header)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            if error["type"] == "json_invalid":
                problems.append(f"invalid JSON: {error.get('ctx', {}).get('error', error['msg'])}")
            else:
                field = ".".join(str(part) for part in error["loc"]) or "body"
                problems.append(f"{field}: {error['msg']}")
        raise InvalidInferenceRequest("Invalid inference request: " + "; ".join(problems)) from None


def _texts(inputs: list[RequestInput], binary_part: bytes) -> list[str]:
    """The texts of the one BYTES input, from its JSON data or its binary data."""
    count = text_count([(item.name, item.datatype, item.shape, item.parameters) for item in inputs])
    [text_input] = inputs
    binary_size = (text_input.parameters or {}).get("binary_data_size")
    if binary_size is None:
        if text_input.data is None:
            raise InvalidInferenceRequest(
                "Input 'text' has neither 'data' nor a 'binary_data_size' parameter."
            )
        binary.cut(binary_part, [])
        elements = flatten_json(text_input.data)
        if not all(isinstance(element, str) for element in elements):
            raise InvalidInferenceRequest("Input 'text': every element of 'data' must be a string.")
        texts: list[str] = elements
    else:
        if isinstance(binary_size, bool) or not isinstance(binary_size, int) or binary_size < 0:
            raise InvalidInferenceRequest(
                f"Input 'text': binary_data_size must be a number of bytes, not {binary_size!r}."
            )
        if text_input.data is not None:
            raise InvalidInferenceRequest(
                "Input 'text' has both 'data' and a 'binary_data_size' parameter; send one."
            )
        raw = binary.cut(binary_part, [(text_input.name, binary_size)])[text_input.name]
        texts = texts_from_binary(raw)
    check_text_count(texts, text_input.shape, count)
    return texts


# An input as the request declares it: name, datatype, shape, parameters.
DeclaredInput = tuple[str, str, Sequence[int], Parameters | None]


def text_count(inputs: Sequence[DeclaredInput]) -> int:
    """The number of texts the request's inputs declare, which must be the one BYTES input
    `text` of shape [B] or [B, 1] (B > 0); its data is not looked at."""
    expected = f"one input named '{signature.INPUT_NAME}', datatype BYTES, shape [-1]"
    if [name for name, *_ in inputs] != [signature.INPUT_NAME]:
        names = ", ".join(f"'{name}'" for name, *_ in inputs) or "none"
        raise InvalidInferenceRequest(f"Expected {expected}; the request has inputs: {names}.")
    [(name, datatype, shape, parameters)] = inputs
    _refuse_unsupported(parameters or {}, f"input '{name}'")
    if datatype != "BYTES":
        raise InvalidInferenceRequest(
            f"Input 'text' must have datatype BYTES (UTF-8 texts), not {datatype}."
        )
    shape = list(shape)
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or min(shape) < 0:
        raise InvalidInferenceRequest(
            f"Input 'text' must have shape [B] or [B, 1] (B texts); it has {shape}."
        )
    count = math.prod(shape)
    if count == 0:
        raise InvalidInferenceRequest("Input 'text' holds no texts: there is nothing to classify.")
    return count


def texts_from_binary(raw: bytes) -> list[str]:
    """The texts of a BYTES tensor in the binary encoding, each checked to be UTF-8."""
    elements = deserialize_bytes(raw, signature.INPUT_NAME)
    return [utf8_text(element, index) for index, element in enumerate(elements)]


def check_text_count(texts: list[str], shape: Sequence[int], count: int) -> None:
    if len(texts) != count:
        raise InvalidInferenceRequest(
            f"Input 'text' has shape {list(shape)}, so {count} elements, but its data holds "
            f"{len(texts)}."
        )


def utf8_text(element: bytes, index: int) -> str:
    try:
        return element.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInferenceRequest(
            f"Input 'text': element {index} is not valid UTF-8 ({exc.reason} at byte {exc.start})."
        ) from None


def _requested_outputs(
    request: InferenceRequest, declared: list[str], model: str
) -> list[tuple[str, bool]]:
    """(name, in binary?) of each output to answer, in the order asked (default: all)."""
    binary_output = _flag(request.parameters or {}, "binary_data_output", "the request")
    if request.outputs is None:
        return [(name, binary_output) for name in declared]
    requested = []
    for output, parameters in zip(
        request.outputs,
        requested_outputs([(o.name, o.parameters) for o in request.outputs], declared, model),
        strict=True,
    ):
        as_binary = (
            _flag(parameters, "binary_data", f"output '{output.name}'")
            if "binary_data" in parameters
            else binary_output
        )
        requested.append((output.name, as_binary))
    return requested


def requested_outputs(
    outputs: Sequence[tuple[str, Parameters | None]], declared: list[str], model: str
) -> list[Parameters]:
    """Checks the outputs a request asks for (each declared, none twice, no parameter of an
    unsupported extension); their parameters, in the order asked."""
    seen: set[str] = set()
    checked = []
    for name, parameters in outputs:
        if name not in declared:
            raise InvalidInferenceRequest(
                f"Model '{model}' has no output '{name}'; its outputs are {', '.join(declared)}."
            )
        if name in seen:
            raise InvalidInferenceRequest(f"Output '{name}' is requested twice.")
        seen.add(name)
        _refuse_unsupported(parameters or {}, f"output '{name}'")
        checked.append(parameters or {})
    return checked


def _flag(parameters: Parameters, key: str, where: str) -> bool:
    value = parameters.get(key, False)
    if not isinstance(value, bool):
        raise InvalidInferenceRequest(f"Parameter '{key}' of {where} must be true or false.")
    return value


def _refuse_unsupported(parameters: Parameters, where: str) -> None:
    for key in _UNSUPPORTED:
        if key in parameters:
            raise InvalidInferenceRequest(
                f"Parameter '{key}' of {where} is not supported by attnserve "
                f"(its extensions: {', '.join(EXTENSIONS)})."
            )
