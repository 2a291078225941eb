"""The service's one ASGI layer: every request's cross-cutting steps, each once, in order.

    HEAD              answered as GET, without the body (a probe may send HEAD)
    request id        accepted from X-Request-ID or made up; on every log event and answer
    answer headers    X-Request-ID and the security headers, added as the answer starts
    metrics, log      route, model, status and duration of every request; `request_finished`
    CORS              when origins are configured (Starlette's CORSMiddleware)
    capacity          a connection opened past `max_connections` is refused 503, but probes
    API key           when keys are configured: 401/403 before anything else is read
    deadline          past `request_timeout_s` the request is answered 503 `request_timeout`
    admission         an inference request is refused 503 while its model's queue is full,
                      and a `detail: heads` one while `max_heads_in_flight` are under way
    body limit        413 past `max_body_bytes`, from Content-Length or counted as it arrives;
                      503 while the bodies arriving fill `max_buffered_body_bytes`
    internal errors   an unexpected exception is logged and answered 500
    compression       a JSON answer of `gzip_min_bytes` or more is gzipped for a client that
                      accepts it

Then the predict routes (`POST /v1/predict`, `/v1/models/{name}/predict`) are answered here
directly: the body is decoded straight into `PredictRequest`, and the answer is encoded once
and sent, without the framework's routing and dependency machinery. A body that does not
decode, and every other route, go on to the FastAPI app, whose routes and error handlers
answer them as documented in the OpenAPI schema.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from pydantic import ValidationError
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attnserve.artifact.graph import HEADS_OUTPUT
from attnserve.service.admission import Admission
from attnserve.service.auth import CHALLENGE, OPEN_PATHS, ApiKeys
from attnserve.service.connections import ON_HEALTH_PORT, OVER_CAPACITY
from attnserve.service.error_responses import ErrorResponder, log_rejection
from attnserve.service.errors import (
    BodiesOverBudget,
    BodyTooLarge,
    HeadsOverBudget,
    InternalError,
    InvalidRequest,
    NotFound,
    OtherHTTPError,
    RequestTimeout,
    ServiceError,
    TooManyConnections,
)
from attnserve.service.headers import add_missing, security_headers
from attnserve.service.limits import BodyBudget, declared_too_large, read_body
from attnserve.service.metrics import MODEL_STATE, Metrics
from attnserve.service.registry import ModelRegistry
from attnserve.service.request_id import HEADER, accepted_request_id, current_request_id
from attnserve.service.route_label import route_template
from attnserve.service.schemas import PredictRequest
from attnserve.service.v1_json import encoded_off_the_loop

logger = logging.getLogger(__name__)
T = TypeVar("T")

_REQUEST_ID_HEADER = HEADER.lower().encode()
# Past this expected wait in the queue, a prediction is dropped if its client leaves.
WATCH_CLIENT_AFTER_MS = 20.0
# zlib's fastest level: on the heads answers, mostly digits, level 5 squeezed 2.37x where
# level 1 squeezed 2.20x, in a quarter of the time.
GZIP_LEVEL = 1
# Answers larger than this are compressed in a worker thread, off the event loop.
COMPRESS_IN_THREAD_BYTES = 256 * 1024
# The status a request's metrics and log carry when its client left before any answer.
CLIENT_GONE = 499


class _Exchange:
    """One request's answer as it goes out: its status, and whether it has started.

    The framework answers a few refusals in plain text (a disallowed CORS preflight, a
    malformed Range header): those are held and sent as the API's JSON error instead. A JSON
    answer of at least `gzip_min_bytes` is compressed for a client that accepts gzip (in a
    worker thread when large); smaller ones go out as they are."""

    def __init__(
        self,
        send: Send,
        extra_headers: list[tuple[bytes, bytes]],
        json_error: Callable[[ServiceError], bytes],
        gzip_min_bytes: int | None,
    ) -> None:
        self._send = send
        self._extra_headers = extra_headers
        self._json_error = json_error
        self._gzip_min_bytes = gzip_min_bytes
        self._held: Message | None = None
        self._held_body = b""
        self._compress = False
        self.status = 500  # until an answer starts: an exception further in is a 500
        self.started = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            headers = list(message.get("headers", []))
            add_missing(headers, self._extra_headers)
            message = {**message, "headers": headers}
            content_type = _content_type(headers)
            if self.status >= 400 and content_type.startswith(b"text/plain"):
                self._held = message
                return
            if self._gzip_min_bytes is not None and content_type == b"application/json":
                length = _header_value(headers, b"content-length")
                if length.isdigit() and int(length) >= self._gzip_min_bytes:
                    self._compress, self._held = True, message
                    return
        elif self._held is not None:
            self._held_body += message.get("body", b"")
            if message.get("more_body", False):
                return
            if self._compress:
                await self._send_compressed(self._held, self._held_body)
            else:
                await self._send_as_json(self._held, self._held_body)
            return
        await self._send(message)

    async def _send_compressed(self, start: Message, body: bytes) -> None:
        if len(body) >= COMPRESS_IN_THREAD_BYTES:
            compressed = await asyncio.to_thread(gzip.compress, body, GZIP_LEVEL)
        else:
            compressed = gzip.compress(body, GZIP_LEVEL)
        headers = [(name, value) for name, value in start["headers"] if name != b"content-length"]
        headers += [
            (b"content-encoding", b"gzip"),
            (b"content-length", b"%d" % len(compressed)),
            (b"vary", b"Accept-Encoding"),
        ]
        await self._send({**start, "headers": headers})
        await self._send({"type": "http.response.body", "body": compressed})

    async def _send_as_json(self, start: Message, text: bytes) -> None:
        error = OtherHTTPError(self.status, text.decode("utf-8", "replace") or "Refused.")
        body = self._json_error(error)
        headers = [
            (name, value)
            for name, value in start["headers"]
            if name not in (b"content-type", b"content-length")
        ]
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await self._send({**start, "headers": headers})
        await self._send({"type": "http.response.body", "body": body})


class Gateway:
    """Pure ASGI: the cross-cutting steps of the module's docstring around the FastAPI app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        responder: ErrorResponder,
        registry: Callable[[], ModelRegistry | None],
        admission: Admission,
        predict_routes: list[BaseRoute],
        max_body_bytes: int,
        max_buffered_body_bytes: int,
        max_connections: int,
        timeout_s: float,
        gzip_min_bytes: int,
        max_heads_in_flight: int,
        api_keys: ApiKeys | None = None,
        cors_origins: list[str] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.responder = responder
        self.registry = registry
        self.admission = admission
        self.predict_routes = predict_routes
        self.max_body_bytes = max_body_bytes
        self.bodies = BodyBudget(max_buffered_body_bytes)
        self.max_connections = max_connections
        self.timeout_s = timeout_s
        self.gzip_min_bytes = gzip_min_bytes
        self.max_heads_in_flight = max_heads_in_flight
        self.heads_in_flight = 0
        self.predictions_in_flight = 0
        self.api_keys = api_keys
        self.guarded: ASGIApp = self._guarded
        if cors_origins:
            self.guarded = CORSMiddleware(
                self._guarded,
                allow_origins=cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "HEAD":
            # HEAD is GET without the body, which the server leaves out for a HEAD request
            scope = {**scope, "method": "GET"}
        start = time.perf_counter()
        request_id = accepted_request_id(_header(scope, _REQUEST_ID_HEADER))
        token = current_request_id.set(request_id)
        accepts_gzip = b"gzip" in _header_value(scope["headers"], b"accept-encoding")
        exchange = _Exchange(
            send,
            [(_REQUEST_ID_HEADER, request_id.encode()), *security_headers(scope["path"])],
            lambda error: self.responder.body(error, scope),
            self.gzip_min_bytes if accepts_gzip else None,
        )
        scope["attnserve.exchange"] = exchange
        answered = False
        try:
            await self.guarded(scope, receive, exchange.send)
            answered = True
        finally:
            route = route_template(scope)
            # the app returned without answering only because the client left
            status = exchange.status if exchange.started or not answered else CLIENT_GONE
            self.metrics.observe_request(
                route, self._model(scope), status, time.perf_counter() - start
            )
            logger.info(
                "request_finished",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - start) * 1000.0, 3),
                },
            )
            # An exception goes on to Starlette's 500 further out, which logs it: with the id.
            if answered:
                current_request_id.reset(token)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange: _Exchange = scope["attnserve.exchange"]
        if scope.get(ON_HEALTH_PORT) and scope["path"] not in OPEN_PATHS:
            elsewhere = NotFound(f"This port serves the health routes only: {scope['path']}.")
            await self.responder.refuse(elsewhere, scope, receive, send)
            return
        if scope.get(OVER_CAPACITY) and scope["path"] not in OPEN_PATHS:
            full = TooManyConnections(self.max_connections)
            await self.responder.refuse(full, scope, receive, send, close=True)
            return
        if self.api_keys is not None:
            refusal = self.api_keys.refusal(scope)
            if refusal is not None:
                await self.responder.refuse(refusal, scope, receive, send, CHALLENGE)
                return
        deadline = asyncio.timeout(self.timeout_s)
        try:
            async with deadline:
                await self._admitted(scope, receive, send, exchange)
        except TimeoutError:
            if not deadline.expired():
                raise
            logger.warning(
                "request_timeout",
                extra={
                    "path": scope["path"],
                    "limit_s": self.timeout_s,
                    "started": exchange.started,
                },
            )
            if not exchange.started:
                error = RequestTimeout(self.timeout_s)
                await self.responder.response(error, scope, {"Retry-After": "1"})(
                    scope, receive, send
                )
        except Exception as exc:
            logger.error("internal_error", extra={"path": scope["path"]}, exc_info=exc)
            if exchange.started:
                raise
            await self.responder.response(InternalError(), scope)(scope, receive, send)

    async def _admitted(
        self, scope: Scope, receive: Receive, send: Send, exchange: _Exchange
    ) -> None:
        registry = self.registry()
        matched = self.admission.match(scope) if registry is not None else None
        if matched is not None and registry is not None:
            refusal = self.admission.refusal(registry, matched[1])
            if refusal is not None:
                await self.responder.refuse(refusal, scope, receive, send, refusal.headers)
                return
        try:
            if declared_too_large(scope, self.max_body_bytes):
                raise BodyTooLarge(self.max_body_bytes)
            body = await read_body(receive, self.max_body_bytes, self.bodies)
        except (BodyTooLarge, BodiesOverBudget) as error:
            await self.responder.refuse(error, scope, receive, send, close=True)
            return
        if body is None:  # the client went away while sending
            return
        if (
            matched is not None
            and registry is not None
            and matched[0] in self.predict_routes
            and _header(scope, b"content-type") == "application/json"
        ):
            scope["route"] = matched[0]
            if await self._predict(scope, receive, send, registry, matched[1], body):
                return
        if body and _header(scope, b"content-type") == "application/json":
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                # the framework would guess UTF-16 or UTF-32 from the first bytes
                not_utf8 = InvalidRequest(
                    f"body: Invalid JSON: not UTF-8 ({exc.reason} at byte {exc.start})"
                )
                log_rejection(scope["path"], not_utf8)
                await self.responder.response(not_utf8, scope)(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)

    async def _predict(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        registry: ModelRegistry,
        path_params: dict[str, Any],
        body: bytes,
    ) -> bool:
        """Answers a predict route's request; False when its body does not decode (the FastAPI
        route then answers with the documented error)."""
        try:
            request = PredictRequest.model_validate_json(body)
        except ValidationError:
            return False
        heads = request.detail == HEADS_OUTPUT
        if heads and self.heads_in_flight >= self.max_heads_in_flight:
            error = HeadsOverBudget(self.max_heads_in_flight)
            log_rejection(scope["path"], error)
            await self.responder.response(error, scope, error.headers)(scope, receive, send)
            return True
        self.heads_in_flight += heads
        self.predictions_in_flight += 1
        try:
            await self._answer(request, registry, path_params.get("name"), scope, receive, send)
        finally:
            self.heads_in_flight -= heads
            self.predictions_in_flight -= 1
        return True

    async def _answer(
        self,
        request: PredictRequest,
        registry: ModelRegistry,
        name: str | None,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """Predicts, encodes and sends the answer (or the error) to a decoded request."""
        try:
            predictor = registry.get(name)
            # a request alone in flight may compute on the loop (service/inference.py)
            alone = self.predictions_in_flight == 1
            prediction = predictor.predict(request.all_texts(), request.detail, alone)
            if predictor.runner.expected_wait_ms() < WATCH_CLIENT_AFTER_MS:
                predictions = await prediction
            else:
                # it will wait in a queue: if the client leaves meanwhile, its texts leave too
                predictions = await _unless_client_leaves(prediction, receive)
        except ClientGone:
            return
        except ServiceError as error:
            log_rejection(scope["path"], error)
            await self.responder.response(error, scope, error.headers)(scope, receive, send)
            return
        start = time.perf_counter()
        payload = await encoded_off_the_loop(predictions)
        timings = predictions.timings.plus_postprocess((time.perf_counter() - start) * 1000.0)
        self.metrics.observe_prediction(predictions, timings)
        scope.setdefault("state", {})[MODEL_STATE] = predictions.model
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"server-timing", timings.server_timing().encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _model(self, scope: Scope) -> str:
        """The model that answered (set by the route), or the served model named in the path."""
        state = scope.get("state") or {}
        if isinstance(state.get(MODEL_STATE), str):
            return str(state[MODEL_STATE])
        name = (scope.get("path_params") or {}).get("name")
        registry = self.registry()
        if registry is not None and isinstance(name, str) and registry.serves(name):
            return name
        return ""


class ClientGone(Exception):
    """The client closed its connection before its answer was ready."""


async def _unless_client_leaves(work: Coroutine[Any, Any, T], receive: Receive) -> T:
    """`work`'s result; cancelled (so a batcher drops its texts) if the client leaves first."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(receive())
    try:
        done, _ = await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        if watch.result()["type"] == "http.disconnect":
            task.cancel()
            logger.info("client_gone", extra={"while": "queued"})
            raise ClientGone
        return await task
    finally:
        watch.cancel()
        if not task.done():
            task.cancel()


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _content_type(headers: list[tuple[bytes, bytes]]) -> bytes:
    return _header_value(headers, b"content-type")


def _header_value(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes:
    return next((value for key, value in headers if key == name), b"")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body read already, then waits as the original does."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
