"""The protocol's calls over the model registry: each translates protobuf messages and calls the
same data plane as /v2 over HTTP (service/oip/dataplane.py), so both answer alike.

Every call goes through `InferenceServicer.answer`: the request id, the API key (but for
liveness and readiness), the deadline, errors as gRPC statuses, metrics and the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message

from attnserve.service.auth import ApiKeys
from attnserve.service.error_responses import log_rejection
from attnserve.service.errors import (
    InternalError,
    InvalidInferenceRequest,
    ModelNotReady,
    ModelUnavailable,
    RequestTimeout,
    ServiceError,
)
from attnserve.service.grpc import attnserve_oip_pb2 as pb
from attnserve.service.grpc.status import status_code, trailing_metadata
from attnserve.service.metrics import Metrics
from attnserve.service.oip import dataplane
from attnserve.service.oip.schemas import Parameters
from attnserve.service.predictor import Predictor
from attnserve.service.registry import ModelRegistry
from attnserve.service.request_id import accepted_request_id, current_request_id

logger = logging.getLogger(__name__)

SERVICE = "inference.GRPCInferenceService"
Context = grpc.aio.ServicerContext[Any, Any]
# Trailing metadata a handler adds to its answer.
Trailers = list[tuple[str, str]]


@dataclass(frozen=True)
class Rpc:
    """One call of the service: its handler, its request type, whether it needs an API key,
    and the model it names (for the metrics)."""

    handler: Callable[[Any, Trailers], Awaitable[Message]]
    request_type: type[Message]
    needs_key: bool = True
    model_of: Callable[[Any], str] = lambda request: ""


class InferenceServicer:
    """`inference.GRPCInferenceService` over a loaded registry."""

    def __init__(
        self,
        registry: ModelRegistry,
        metrics: Metrics,
        *,
        readiness: str,
        timeout_s: float,
        api_keys: ApiKeys | None,
    ) -> None:
        self.registry = registry
        self.metrics = metrics
        self.readiness = readiness
        self.timeout_s = timeout_s
        self.api_keys = api_keys
        self.rpcs = {
            "ServerLive": Rpc(self.server_live, pb.ServerLiveRequest, needs_key=False),
            "ServerReady": Rpc(self.server_ready, pb.ServerReadyRequest, needs_key=False),
            "ModelReady": Rpc(self.model_ready, pb.ModelReadyRequest, model_of=_name),
            "ServerMetadata": Rpc(self.server_metadata, pb.ServerMetadataRequest),
            "ModelMetadata": Rpc(self.model_metadata, pb.ModelMetadataRequest, model_of=_name),
            "ModelInfer": Rpc(self.model_infer, pb.ModelInferRequest, model_of=_model_name),
        }

    def handler(self) -> grpc.GenericRpcHandler:
        """The service's methods, for `grpc.aio.Server.add_generic_rpc_handlers`."""
        methods: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {}
        for method in self.rpcs:

            async def answer(request: bytes, context: Context, method: str = method) -> bytes:
                return await self.answer(method, request, context)

            # No deserializer: `answer` parses the request itself, since gRPC answers bytes
            # that do not parse INTERNAL, as if the server were at fault.
            methods[method] = grpc.unary_unary_rpc_method_handler(answer)
        return grpc.method_handlers_generic_handler(SERVICE, methods)

    async def answer(self, method: str, request: bytes, context: Context) -> bytes:
        """Parses `request` and runs `method`'s handler on it; a `ServiceError` is answered as
        its status, any other exception as INTERNAL (logged), never UNKNOWN."""
        rpc = self.rpcs[method]
        route = f"/{SERVICE}/{method}"
        start = time.perf_counter()
        metadata = _metadata(context)
        request_id = accepted_request_id(metadata.get("x-request-id"))
        token = current_request_id.set(request_id)
        # The request id goes back in the trailing metadata, with the answer: initial metadata
        # sent apart would cost one more write on every call.
        trailers: Trailers = [("x-request-id", request_id)]
        model = ""
        code = grpc.StatusCode.CANCELLED  # unless answered: the client went away
        try:
            message = _parsed(rpc.request_type, request, method)
            model = rpc.model_of(message)
            response = await self._run(rpc, message, trailers, metadata)
            code = grpc.StatusCode.OK
            context.set_trailing_metadata(trailers)
            return response.SerializeToString()
        except ServiceError as error:
            code = status_code(error)
            log_rejection(route, error)
            failure = error
        except Exception as exc:  # our bug: logged, and answered without its details
            logger.error("internal_error", extra={"path": route}, exc_info=exc)
            code = grpc.StatusCode.INTERNAL
            failure = InternalError()
        finally:
            served = model if self.registry.serves(model) else ""
            seconds = time.perf_counter() - start
            self.metrics.observe_grpc_call(method, served, code.name, seconds)
            logger.info(
                "request_finished",
                extra={
                    "method": "gRPC",
                    "route": route,
                    "status": code.name,
                    "duration_ms": round(seconds * 1000.0, 3),
                },
            )
            current_request_id.reset(token)
        await context.abort(code, failure.message, (*trailers, *trailing_metadata(failure)))

    async def _run(
        self, rpc: Rpc, request: Any, trailers: Trailers, metadata: Mapping[str, str]
    ) -> Message:
        if rpc.needs_key and self.api_keys is not None:
            authorization = metadata.get("authorization", "").encode("latin-1")
            refusal = self.api_keys.key_refusal(authorization)
            if refusal is not None:
                raise refusal
        deadline = asyncio.timeout(self.timeout_s)
        try:
            async with deadline:
                return await rpc.handler(request, trailers)
        except TimeoutError:
            if not deadline.expired():
                raise
            raise RequestTimeout(self.timeout_s) from None

    async def server_live(self, request: pb.ServerLiveRequest, trailers: Trailers) -> Message:
        return pb.ServerLiveResponse(live=True)

    async def server_ready(self, request: pb.ServerReadyRequest, trailers: Trailers) -> Message:
        """Ready by the readiness policy; not ready is an answer (`ready: false`), no error."""
        try:
            self.registry.check_ready(self.readiness)
        except ModelNotReady:
            return pb.ServerReadyResponse(ready=False)
        return pb.ServerReadyResponse(ready=True)

    async def model_ready(self, request: pb.ModelReadyRequest, trailers: Trailers) -> Message:
        """Ready when served; `ready: false` for a model whose artifact failed verification;
        NOT_FOUND for a name (or version) the repository does not have."""
        try:
            dataplane.predictor_for(self.registry, request.name, request.version or None)
        except ModelUnavailable:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    async def server_metadata(
        self, request: pb.ServerMetadataRequest, trailers: Trailers
    ) -> Message:
        metadata = dataplane.server_metadata()
        return pb.ServerMetadataResponse(
            name=metadata.name, version=metadata.version, extensions=metadata.extensions
        )

    async def model_metadata(self, request: pb.ModelMetadataRequest, trailers: Trailers) -> Message:
        predictor = dataplane.predictor_for(self.registry, request.name, request.version or None)
        metadata = dataplane.model_metadata(predictor)
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=metadata.name,
            versions=metadata.versions,
            platform=metadata.platform,
            inputs=[
                tensor(name=t.name, datatype=t.datatype, shape=t.shape) for t in metadata.inputs
            ],
            outputs=[
                tensor(name=t.name, datatype=t.datatype, shape=t.shape) for t in metadata.outputs
            ],
        )

    async def model_infer(self, request: pb.ModelInferRequest, trailers: Trailers) -> Message:
        """Admission, then texts from the BYTES input (raw or typed contents) -> predictor ->
        the requested outputs, each in `raw_output_contents` as Triton answers them."""
        refusal = self.registry.refusal(request.model_name)
        if refusal is not None:
            raise refusal
        predictor = dataplane.predictor_for(
            self.registry, request.model_name, request.model_version or None
        )
        texts = _texts(request)
        requested = _requested_outputs(request, predictor)

        predictions = await predictor.predict(texts)

        start = time.perf_counter()
        tensors = dataplane.output_tensors(predictor, predictions)
        response = pb.ModelInferResponse(
            model_name=predictor.manifest.name,
            model_version=predictor.manifest.version,
            id=request.id,
        )
        for name in requested:
            tensor = tensors[name]
            response.outputs.add(name=name, datatype=tensor.datatype, shape=tensor.shape)
            response.raw_output_contents.append(tensor.binary_data())
        timings = predictions.timings.plus_postprocess((time.perf_counter() - start) * 1000.0)
        self.metrics.observe_prediction(predictions, timings)
        trailers.append(("server-timing", timings.server_timing()))
        return response


def _texts(request: pb.ModelInferRequest) -> list[str]:
    """The texts of the one BYTES input: from `raw_input_contents`, or its typed contents."""
    count = dataplane.text_count(
        [
            (item.name, item.datatype, list(item.shape), _parameters(item.parameters))
            for item in request.inputs
        ]
    )
    [text_input] = request.inputs
    raw = request.raw_input_contents
    typed = [field.name for field, _ in text_input.contents.ListFields()]
    if raw:
        if len(raw) != 1:
            raise InvalidInferenceRequest(
                f"raw_input_contents has {len(raw)} entries; there must be one per input (1)."
            )
        if typed:
            raise InvalidInferenceRequest(
                "Input 'text' has both contents and raw_input_contents; send one."
            )
        texts = dataplane.texts_from_binary(raw[0])
    else:
        if typed not in ([], ["bytes_contents"]):
            raise InvalidInferenceRequest(
                f"Input 'text' is BYTES: its data goes in contents.bytes_contents (or "
                f"raw_input_contents), not {', '.join(f'contents.{name}' for name in typed)}."
            )
        elements = text_input.contents.bytes_contents
        texts = [dataplane.utf8_text(element, index) for index, element in enumerate(elements)]
    dataplane.check_text_count(texts, text_input.shape, count)
    return texts


def _requested_outputs(request: pb.ModelInferRequest, predictor: Predictor) -> list[str]:
    """The outputs to answer, in the order asked (default: all, in the metadata's order)."""
    declared = dataplane.output_names(predictor)
    if not request.outputs:
        return declared
    asked = [(output.name, _parameters(output.parameters)) for output in request.outputs]
    dataplane.requested_outputs(asked, declared, predictor.manifest.name)
    return [name for name, _ in asked]


def _parameters(entries: Mapping[str, pb.InferParameter]) -> Parameters:
    """Parameters as the HTTP protocol's JSON has them: each set value, whatever its kind."""
    values: Parameters = {}
    for key, parameter in entries.items():
        choice = parameter.WhichOneof("parameter_choice")
        if choice is not None:
            values[key] = getattr(parameter, choice)
    return values


def _metadata(context: Context) -> dict[str, str]:
    """The call's metadata (lower-case keys; binary `-bin` entries left out)."""
    return {
        key: value for key, value in (context.invocation_metadata() or ()) if isinstance(value, str)
    }


def _name(request: pb.ModelReadyRequest | pb.ModelMetadataRequest) -> str:
    return request.name


def _model_name(request: pb.ModelInferRequest) -> str:
    return request.model_name


def _parsed(request_type: type[Message], request: bytes, method: str) -> Any:
    try:
        return request_type.FromString(request)
    except DecodeError:
        raise InvalidInferenceRequest(
            f"The request is not a {request_type.__name__} message of {method}."
        ) from None
