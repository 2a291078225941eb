"""`Client` and `AsyncClient`: the same calls, blocking or awaited, over httpx."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from attnserve_client.errors import APIError, ServiceUnavailable, Timeout, TransportError
from attnserve_client.models import ModelInfo, Prediction, PredictResponse
from attnserve_client.retry import RETRY_STATUS, RetryPolicy

DEFAULT_TIMEOUT_S = 10.0

T = TypeVar("T")


class _ModelList(BaseModel):
    models: list[ModelInfo]


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
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            headers=_headers(api_key, headers),
            transport=transport,
        )

    def predict(self, texts: Sequence[str], *, model: str | None = None) -> list[Prediction]:
        """Predictions for `texts`, in order, by `model` (default: the service's default)."""
        return self.predict_response(texts, model=model).predictions

    def predict_response(
        self, texts: Sequence[str], *, model: str | None = None
    ) -> PredictResponse:
        """The whole answer: the predictions, and the model and version that made them."""
        path, body = _predict_request(texts, model)
        return _read(self._send("POST", path, body), PredictResponse)

    def models(self) -> list[ModelInfo]:
        """The served models."""
        return _read(self._send("GET", "/v1/models"), _ModelList).models

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
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            headers=_headers(api_key, headers),
            transport=transport,
        )

    async def predict(self, texts: Sequence[str], *, model: str | None = None) -> list[Prediction]:
        """Predictions for `texts`, in order, by `model` (default: the service's default)."""
        return (await self.predict_response(texts, model=model)).predictions

    async def predict_response(
        self, texts: Sequence[str], *, model: str | None = None
    ) -> PredictResponse:
        """The whole answer: the predictions, and the model and version that made them."""
        path, body = _predict_request(texts, model)
        return _read(await self._send("POST", path, body), PredictResponse)

    async def models(self) -> list[ModelInfo]:
        """The served models."""
        return _read(await self._send("GET", "/v1/models"), _ModelList).models

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


def _predict_request(texts: Sequence[str], model: str | None) -> tuple[str, dict[str, Any]]:
    if isinstance(texts, str):
        raise TypeError("predict takes a sequence of texts: wrap one text in a list")
    path = "/v1/predict" if model is None else f"/v1/models/{quote(model, safe='')}/predict"
    return path, {"texts": list(texts)}


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
