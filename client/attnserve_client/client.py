"""`Client` and `AsyncClient`: the same calls, blocking or awaited, over httpx.

A prediction of more texts than the server takes in one request is sent in several: the
server's 413 `too_many_texts` names its limit, which the client keeps for its later calls.
Both clients drive one request plan (`_prediction_plan`), so they cannot drift apart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from attnserve_client.errors import APIError, ServiceUnavailable, Timeout, TransportError
from attnserve_client.models import ModelList, Prediction, PredictResponse
from attnserve_client.retry import RETRY_STATUS, RetryPolicy

DEFAULT_TIMEOUT_S = 10.0
TOO_MANY_TEXTS = "too_many_texts"

T = TypeVar("T")
# "heads": the Transformer's per-head maps; "pieces": the word pieces the model read
Detail = Literal["heads", "pieces"]
Texts = str | Sequence[str]


class _RequestLimit:
    """Most texts the server takes in one request, once a 413 has told it (None until then)."""

    max_texts: int | None = None


class Client:
    """Blocking client. Use it as a context manager, or call `close()`.

    `timeout` is seconds (or an `httpx.Timeout`) for each attempt; `retry` says how often
    and how long to wait on a 503 or a refused connection; `api_key` is sent as a Bearer
    token; `transport` replaces httpx's (a proxy, a test transport).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retry = retry if retry is not None else RetryPolicy()
        self._limit = _RequestLimit()
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            headers=_headers(api_key, headers),
            transport=transport,
        )

    def predict(
        self, texts: Texts, *, model: str | None = None, detail: Detail | None = None
    ) -> list[Prediction]:
        """Predictions for `texts` (a string is one text), in order, by `model` (default: the
        service's default); `detail` asks for more of each (see `Detail`)."""
        return self.predict_response(texts, model=model, detail=detail).predictions

    def predict_response(
        self, texts: Texts, *, model: str | None = None, detail: Detail | None = None
    ) -> PredictResponse:
        """The whole answer: the predictions, and the model and version that made them; sent
        in as many requests as the server's limit on texts asks."""
        plan = _prediction_plan(self._limit, texts, model, detail)
        request = next(plan)
        while True:
            try:
                request = plan.send(self._send("POST", *request))
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def models(self) -> ModelList:
        """What the server serves: its models, the default one, and any it could not load."""
        return _read(self._send("GET", "/v1/models"), ModelList)

    def ready(self) -> bool:
        """True when every model is loaded (one attempt, no retry)."""
        return _is_ready(self._send("GET", "/readyz", retry=False))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _send(
        self, method: str, path: str, body: Any = None, *, retry: bool = True
    ) -> httpx.Response:
        attempts = self.retry.attempts if retry else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._http.request(method, path, json=body)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if last:
                    raise _transport_error(method, path, exc) from exc
                wait = self.retry.delay(attempt)
            except httpx.TransportError as exc:
                raise _transport_error(method, path, exc) from exc
            else:
                if response.status_code != RETRY_STATUS or last:
                    return response
                wait = self.retry.delay(attempt, response.headers.get("retry-after"))
            time.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")


class AsyncClient:
    """The same as `Client`, awaited: `async with AsyncClient(url) as client: ...`."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry = retry if retry is not None else RetryPolicy()
        self._limit = _RequestLimit()
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            headers=_headers(api_key, headers),
            transport=transport,
        )

    async def predict(
        self, texts: Texts, *, model: str | None = None, detail: Detail | None = None
    ) -> list[Prediction]:
        """Predictions for `texts` (a string is one text), in order, by `model` (default: the
        service's default); `detail` asks for more of each (see `Detail`)."""
        return (await self.predict_response(texts, model=model, detail=detail)).predictions

    async def predict_response(
        self, texts: Texts, *, model: str | None = None, detail: Detail | None = None
    ) -> PredictResponse:
        """The whole answer: the predictions, and the model and version that made them; sent
        in as many requests as the server's limit on texts asks."""
        plan = _prediction_plan(self._limit, texts, model, detail)
        request = next(plan)
        while True:
            try:
                request = plan.send(await self._send("POST", *request))
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def models(self) -> ModelList:
        """What the server serves: its models, the default one, and any it could not load."""
        return _read(await self._send("GET", "/v1/models"), ModelList)

    async def ready(self) -> bool:
        """True when every model is loaded (one attempt, no retry)."""
        return _is_ready(await self._send("GET", "/readyz", retry=False))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _send(
        self, method: str, path: str, body: Any = None, *, retry: bool = True
    ) -> httpx.Response:
        attempts = self.retry.attempts if retry else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self._http.request(method, path, json=body)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if last:
                    raise _transport_error(method, path, exc) from exc
                wait = self.retry.delay(attempt)
            except httpx.TransportError as exc:
                raise _transport_error(method, path, exc) from exc
            else:
                if response.status_code != RETRY_STATUS or last:
                    return response
                wait = self.retry.delay(attempt, response.headers.get("retry-after"))
            await asyncio.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")


def _headers(api_key: str | None, headers: Mapping[str, str] | None) -> dict[str, str]:
    merged = dict(headers or {})
    if api_key is not None:
        merged["Authorization"] = f"Bearer {api_key}"
    return merged


# One POST: its path and JSON body.
Request = tuple[str, dict[str, Any]]


def _prediction_plan(
    limit: _RequestLimit, texts: Texts, model: str | None, detail: Detail | None
) -> Generator[Request, httpx.Response, PredictResponse]:
    """The requests of one prediction, each answer sent back in: the texts in chunks of the
    server's limit (all at once until a 413 names it), the answers joined in order. An error
    about some texts names them by their place in `texts`, not in the chunk."""
    batch = [texts] if isinstance(texts, str) else list(texts)
    path = "/v1/predict" if model is None else f"/v1/models/{quote(model, safe='')}/predict"
    answers: list[PredictResponse] = []
    start = 0
    while start < len(batch) or not answers:
        chunk = batch[start : start + (limit.max_texts or len(batch))]
        body: dict[str, Any] = {"texts": chunk}
        if detail is not None:
            body["detail"] = detail
        response = yield path, body
        error = _api_error(response) if response.is_error else None
        if error is not None and error.code == TOO_MANY_TEXTS and len(chunk) > 1:
            told = (error.details or {}).get("limit")
            if isinstance(told, int) and 0 < told < len(chunk):
                limit.max_texts = told
                continue
        if error is not None:
            raise _placed(error, start)
        answers.append(PredictResponse.model_validate_json(response.content))
        start += len(chunk)
    return answers[0].model_copy(
        update={"predictions": [p for answer in answers for p in answer.predictions]}
    )


def _placed(error: APIError, offset: int) -> APIError:
    """`error` with the text positions in its details (`index`, `indices`) moved by `offset`."""
    if not offset or error.details is None:
        return error
    details = dict(error.details)
    if isinstance(details.get("index"), int):
        details["index"] += offset
    if isinstance(details.get("indices"), list):
        details["indices"] = [index + offset for index in details["indices"]]
    return type(error)(error.status, error.code, error.message, details)


def _read(response: httpx.Response, model: type[T]) -> T:
    """The answer as `model`, or the service's error raised as an APIError."""
    if response.is_error:
        raise _api_error(response)
    return TypeAdapter(model).validate_json(response.content)


def _is_ready(response: httpx.Response) -> bool:
    if response.status_code in (200, RETRY_STATUS):
        return response.status_code == 200
    raise _api_error(response)


def _api_error(response: httpx.Response) -> APIError:
    kind = ServiceUnavailable if response.status_code == RETRY_STATUS else APIError
    try:
        error = response.json()["error"]
        return kind(response.status_code, error["code"], error["message"], error.get("details"))
    except (ValueError, KeyError, TypeError):  # not the service's error body (e.g. a proxy's)
        message = response.text[:500] or response.reason_phrase
        return kind(response.status_code, f"http_{response.status_code}", message)


def _transport_error(method: str, path: str, exc: httpx.TransportError) -> TransportError:
    if isinstance(exc, httpx.TimeoutException):
        return Timeout(f"{method} {path}: no answer within the timeout ({exc!r})")
    return TransportError(f"{method} {path}: {exc!r}")
