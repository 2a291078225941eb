"""The Python client against the real server over a real socket: typed answers equal to the
HTTP API's, the service's errors as typed exceptions, retries on 503 and timeouts."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from attnserve.service.app import create_app
from attnserve.service.registry import ModelRegistry
from attnserve_client import (
    APIError,
    AsyncClient,
    Client,
    RetryPolicy,
    ServiceUnavailable,
    Timeout,
    TransportError,
)
from tests.conftest import REPO_ROOT, cpu_settings, same_answer
from tests.live_server import serve

TEXTS = ["The battery life is great", "Crème brûlée 😀 was awful", "ok"]
FAST = RetryPolicy(attempts=3, backoff_s=0.01, jitter=0.0)


@pytest.fixture(scope="module")
def v1_answer(live_server: str) -> dict[str, Any]:
    response = httpx.post(f"{live_server}/v1/predict", json={"texts": TEXTS})
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


class RecordingTransport(httpx.HTTPTransport):
    """httpx's own transport, noting each answer's status and handing it to `then`."""

    def __init__(self, then: Callable[[httpx.Response], None] | None = None) -> None:
        super().__init__()
        self.statuses: list[int] = []
        self.then = then

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.statuses.append(response.status_code)
        if self.then is not None:
            self.then(response)
        return response


def test_predict_returns_typed_predictions_equal_to_the_http_answer(
    live_server: str, v1_answer: dict[str, Any]
) -> None:
    with Client(live_server) as client:
        predictions = client.predict(TEXTS)
        response = client.predict_response(TEXTS[:1], model=v1_answer["model"])
        [single] = client.predict(TEXTS[0])
        models = client.models()
        ready = client.ready()
    served_models = httpx.get(f"{live_server}/v1/models").json()

    assert [prediction.model_dump() for prediction in predictions] == v1_answer["predictions"]
    assert predictions[0].tokens[0].text == TEXTS[0][: predictions[0].tokens[0].end]
    assert (response.model, response.version) == (v1_answer["model"], v1_answer["version"])
    assert same_answer(response.predictions[0], predictions[0])
    assert same_answer(predictions[0], single)
    assert models.default_model == served_models["default_model"] == v1_answer["model"]
    assert [model.name for model in models.models] == [m["name"] for m in served_models["models"]]
    assert models.models[0].labels == served_models["models"][0]["labels"]
    assert models.models[0].metrics == served_models["models"][0]["metrics"]
    assert ready is True


def test_detail_asks_for_the_pieces_or_the_heads(live_server: str) -> None:
    with Client(live_server) as client:
        [plain] = client.predict("unbelievably good", model="minilm-attention")
        [pieces] = client.predict("unbelievably good", model="minilm-attention", detail="pieces")
        [heads] = client.predict("great", model="transformer", detail="heads")

    assert plain.pieces is None and pieces.pieces is not None
    assert [piece.text for piece in pieces.pieces][:2] == ["un", "bel"]
    assert heads.heads is not None and len(heads.heads[0][0]) == 1  # [layer][head][1][1]


def test_more_texts_than_the_server_takes_are_sent_in_chunks_of_its_limit(
    two_text_server: str, live_server: str
) -> None:
    texts = [f"{text} {n}" for n in range(3) for text in TEXTS[:2]] + ["fine"]  # 7 texts
    transport = RecordingTransport()

    with Client(two_text_server, transport=transport) as client:
        predictions = client.predict(texts)
        again = client.predict(texts[:3])
        with pytest.raises(APIError) as empty:
            client.predict([*texts[:4], " "])
    with Client(live_server) as client:
        at_once = client.predict(texts)

    assert same_answer(predictions, at_once)
    assert same_answer(again, at_once[:3])
    # one 413 names the limit; then 4 requests of at most 2, and the limit is kept
    assert transport.statuses == [413, 200, 200, 200, 200, 200, 200, 200, 200, 422]
    # the empty text is named by its place in the whole list, not in its chunk
    assert (empty.value.code, empty.value.details) == ("empty_text", {"indices": [4]})


def test_the_async_client_gives_the_same_answers(
    live_server: str, v1_answer: dict[str, Any]
) -> None:
    async def run() -> tuple[list[Any], bool]:
        async with AsyncClient(live_server) as client:
            predictions = await client.predict(TEXTS)
            return [p.model_dump() for p in predictions], await client.ready()

    predictions, ready = asyncio.run(run())

    assert predictions == v1_answer["predictions"]
    assert ready is True


def test_the_services_errors_are_raised_typed_with_code_message_and_details(
    live_server: str,
) -> None:
    with Client(live_server) as client:
        with pytest.raises(APIError) as empty:
            client.predict(["fine", "  "])
        with pytest.raises(APIError) as unknown:
            client.predict(["fine"], model="no-such-model")

    assert (empty.value.status, empty.value.code, empty.value.details) == (
        422,
        "empty_text",
        {"indices": [1]},
    )
    assert empty.value.message.startswith("Text at index 1 is empty")
    assert (unknown.value.status, unknown.value.code) == (404, "model_not_found")
    assert not isinstance(unknown.value, ServiceUnavailable)


def test_a_503_is_retried_until_the_models_have_loaded(shipped_repository: Path) -> None:
    settings = cpu_settings(shipped_repository)
    app = create_app(settings)

    def models_finish_loading(response: httpx.Response) -> None:
        if response.status_code == 503:
            app.state.registry = ModelRegistry.load(settings)

    transport = RecordingTransport(then=models_finish_loading)
    with serve(app, lifespan="off") as url, Client(url, retry=FAST, transport=transport) as client:
        [prediction] = client.predict(["great"])

    assert transport.statuses == [503, 200]
    assert prediction.label in ("negative", "positive")


def test_503_on_every_attempt_raises_service_unavailable_with_the_servers_reason(
    shipped_repository: Path,
) -> None:
    transport = RecordingTransport()
    app = create_app(cpu_settings(shipped_repository))
    with serve(app, lifespan="off") as url, Client(url, retry=FAST, transport=transport) as client:
        assert client.ready() is False
        with pytest.raises(ServiceUnavailable) as unavailable:
            client.predict(["great"])

    assert transport.statuses == [503] * (1 + FAST.attempts)  # ready() once, predict 3 times
    assert unavailable.value.code == "model_not_ready"
    assert unavailable.value.message == "Models are not loaded; try again shortly."


def _busy_once(app: Any) -> Any:
    """A proxy in front of the app (as while a deployment scales up): its first answer is
    503 with Retry-After: 1, then it passes every request through."""
    answered = False

    async def proxy(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal answered
        if scope["type"] == "http" and not answered:
            answered = True
            headers = [(b"retry-after", b"1"), (b"content-type", b"text/plain")]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": b"scaling up"})
            return
        await app(scope, receive, send)

    return proxy


def test_the_async_client_waits_as_long_as_retry_after_says(shipped_repository: Path) -> None:
    app = _busy_once(create_app(cpu_settings(shipped_repository)))

    async def run(url: str) -> tuple[float, str]:
        async with AsyncClient(url, retry=FAST) as client:
            start = time.monotonic()
            [prediction] = await client.predict(["great"])
            return time.monotonic() - start, prediction.label

    with serve(app) as url:
        elapsed, label = asyncio.run(run(url))

    # FAST backs off 0.01 s: only the server's Retry-After explains a wait of a second.
    assert 1.0 <= elapsed < 5.0
    assert label in ("negative", "positive")


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A socket that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_no_answer_within_the_timeout_raises_timeout_without_retrying(silent_server: str) -> None:
    with Client(silent_server, timeout=0.3, retry=FAST) as client:
        start = time.monotonic()
        with pytest.raises(Timeout):
            client.predict(["great"])

    assert 0.3 <= time.monotonic() - start < 0.9


def test_a_refused_connection_is_retried_then_raised() -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    policy = RetryPolicy(attempts=3, backoff_s=0.1, jitter=0.0)

    with Client(f"http://127.0.0.1:{port}", retry=policy) as client:
        start = time.monotonic()
        with pytest.raises(TransportError) as refused:
            client.predict(["great"])

    assert not isinstance(refused.value, Timeout)
    assert time.monotonic() - start >= 0.1 + 0.2  # the two waits between three attempts


def test_the_client_distribution_depends_on_httpx_and_pydantic_only() -> None:
    project = tomllib.loads((REPO_ROOT / "client" / "pyproject.toml").read_text("utf-8"))
    assert project["project"]["dependencies"] == ["httpx>=0.27", "pydantic>=2.7"]
    code = (
        "import sys, attnserve_client; "
        "heavy = [m for m in ('torch', 'onnxruntime', 'numpy', 'service') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
