"""Dynamic batching with the shipped model: shared batches answer as one-by-one calls do."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from attnserve.artifact.graph import PaddedBatch
from attnserve.artifact.tokenizer import TextEncoder
from attnserve.service.app import create_app
from attnserve.service.batching import UNMEASURED_MS_PER_TEXT, Batcher
from attnserve.service.errors import ModelNotReady, Overloaded, QueueTooSlow
from attnserve.service.inference import Computed, GraphOutputs, SessionRunner
from attnserve.service.loading import LoadedModel, load_artifact
from attnserve.service.providers import CPU, SessionConfig
from tests.conftest import DEFAULT_MODEL, WORD_MODEL, cpu_settings
from tests.live_server import serve

TEXTS = [
    "ok",
    "Great value, works perfectly.",
    "Stopped charging after a week and support never answered my emails about it.",
    "The battery life is great but the screen is awful",
    "meh",
    "I would buy this again without a second thought, it is simply the best phone I own.",
    "Awful.",
    "Not worth the money",
]


class RecordingRunner(SessionRunner):
    """The real session runner, recording the shape of every batch it ran."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.shapes: list[tuple[int, int]] = []

    def compute(self, batch: PaddedBatch, heads: bool = False) -> GraphOutputs:
        self.shapes.append(batch.input_ids.shape)
        return super().compute(batch, heads)


def _one_by_one(model: LoadedModel, texts: list[str]) -> list[GraphOutputs]:
    runner = SessionRunner(model.session)
    return [runner.compute(model.encoder.pad(model.encoder.encode([text]))) for text in texts]


async def _each_alone_at_once(
    batcher: Batcher, encoder: TextEncoder, texts: list[str]
) -> list[Computed]:
    """`texts` sent to `batcher` at once, a request each; the batcher closed after."""
    try:
        return await asyncio.gather(
            *(batcher.run(encoder.pad(encoder.encode([text]))) for text in texts)
        )
    finally:
        await batcher.close()


@pytest.mark.anyio
async def test_concurrent_texts_share_batches_and_get_their_one_by_one_answers(
    loaded_model: LoadedModel,
) -> None:
    inner = RecordingRunner(loaded_model.session)
    batcher = Batcher(
        inner, loaded_model.encoder.pad_id, max_batch_size=3, max_delay_ms=50, max_queue_texts=64
    )
    encoder = loaded_model.encoder

    batched = await _each_alone_at_once(batcher, encoder, TEXTS)

    # 8 texts, at most 3 per batch: 3 + 3 + 2, each padded to its own longest row.
    assert [rows for rows, _ in inner.shapes] == [3, 3, 2]
    lengths = [len(item.ids) for item in encoder.encode(TEXTS)]
    assert [width for _, width in inner.shapes] == [
        max(lengths[0:3]),
        max(lengths[3:6]),
        max(lengths[6:8]),
    ]
    for text, computed, alone in zip(TEXTS, batched, _one_by_one(loaded_model, TEXTS), strict=True):
        together = computed.outputs
        assert together.attention.shape == alone.attention.shape, text
        np.testing.assert_allclose(together.probabilities, alone.probabilities, atol=1e-6)
        np.testing.assert_allclose(together.attention, alone.attention, atol=1e-6)


@pytest.mark.anyio
async def test_grouped_by_length_the_oldest_rides_with_the_texts_nearest_it_in_length(
    loaded_model: LoadedModel,
) -> None:
    inner = RecordingRunner(loaded_model.session)
    encoder = loaded_model.encoder
    batcher = Batcher(
        inner, encoder.pad_id, 3, max_delay_ms=50, max_queue_texts=64, group_by_length=True
    )

    batched = await _each_alone_at_once(batcher, encoder, TEXTS)

    # The oldest ("ok", the shortest) rides with the two nearest it in length, and so on:
    # less padding than batches taken in order of arrival, and the same answers.
    assert [rows for rows, _ in inner.shapes] == [3, 3, 2]
    lengths = [len(item.ids) for item in encoder.encode(TEXTS)]
    widths = [width for _, width in inner.shapes]
    assert widths[0] == sorted(lengths)[2]
    assert widths == sorted(widths)
    in_arrival_order = 3 * max(lengths[0:3]) + 3 * max(lengths[3:6]) + 2 * max(lengths[6:8])
    assert sum(rows * width for rows, width in inner.shapes) < in_arrival_order
    for computed, alone in zip(batched, _one_by_one(loaded_model, TEXTS), strict=True):
        np.testing.assert_allclose(computed.outputs.probabilities, alone.probabilities, atol=1e-6)


@pytest.mark.anyio
async def test_grouped_by_length_a_text_of_unlike_length_goes_once_it_is_the_oldest(
    loaded_model: LoadedModel,
) -> None:
    inner = RecordingRunner(loaded_model.session)
    encoder = loaded_model.encoder
    batcher = Batcher(
        inner, encoder.pad_id, 2, max_delay_ms=50, max_queue_texts=64, group_by_length=True
    )
    long_text = TEXTS[5]
    texts = ["ok", long_text, *["fine"] * 6]

    await _each_alone_at_once(batcher, encoder, texts)

    # the short ones pair up around it, but once it is the oldest it goes next
    long_length = len(encoder.encode([long_text])[0].ids)
    assert [width for _, width in inner.shapes].index(long_length) == 1
    assert [rows for rows, _ in inner.shapes] == [2, 2, 2, 2]


@pytest.mark.anyio
async def test_a_request_larger_than_a_batch_rides_in_several_cut_to_their_longest_row(
    loaded_model: LoadedModel,
) -> None:
    inner = RecordingRunner(loaded_model.session)
    encoder = loaded_model.encoder
    batcher = Batcher(inner, encoder.pad_id, 3, max_delay_ms=0, max_queue_texts=64)
    batch = encoder.pad(encoder.encode(TEXTS))

    started = time.perf_counter()
    try:
        computed = await batcher.run(batch)
    finally:
        await batcher.close()
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    together = computed.outputs

    # its pieces' time, apart: computing, and what was not computing was waiting
    assert computed.inference_ms > 0.0 and computed.queue_ms >= 0.0
    assert computed.queue_ms + computed.inference_ms <= elapsed_ms

    # sorted by length before it is cut: each piece holds texts of like length
    lengths = sorted(len(item.ids) for item in encoder.encode(TEXTS))
    assert inner.shapes == [(3, lengths[2]), (3, lengths[5]), (2, lengths[7])]
    in_request_order = [len(item.ids) for item in encoder.encode(TEXTS)]
    padded_in_request_order = sum(
        len(piece) * max(piece) for piece in (in_request_order[i : i + 3] for i in (0, 3, 6))
    )
    assert sum(rows * width for rows, width in inner.shapes) < padded_in_request_order
    alone = SessionRunner(loaded_model.session).compute(batch)
    assert together.attention.shape == alone.attention.shape == batch.input_ids.shape
    np.testing.assert_allclose(together.probabilities, alone.probabilities, atol=1e-6)
    np.testing.assert_allclose(together.attention, alone.attention, atol=1e-6)


@pytest.mark.anyio
async def test_padding_with_longer_neighbours_leaves_zero_attention_on_the_padding(
    loaded_model: LoadedModel,
) -> None:
    # The invariance batching relies on, checked on the merged batch itself.
    encoder = loaded_model.encoder
    batcher = Batcher(
        SessionRunner(loaded_model.session), encoder.pad_id, 64, 0, max_queue_texts=64
    )
    merged = batcher.merge([encoder.pad(encoder.encode([text])) for text in TEXTS])
    output = SessionRunner(loaded_model.session).compute(merged)

    padding = merged.attention_mask == 0
    assert padding.any()
    assert np.all(output.attention[padding] == 0.0)
    for row, alone in enumerate(_one_by_one(loaded_model, TEXTS)):
        np.testing.assert_allclose(output.probabilities[row], alone.probabilities[0], atol=1e-6)


@pytest.mark.anyio
async def test_a_full_queue_refuses_at_once_and_recovers(loaded_model: LoadedModel) -> None:
    encoder = loaded_model.encoder
    batcher = Batcher(
        SessionRunner(loaded_model.session),
        encoder.pad_id,
        max_batch_size=64,
        max_delay_ms=300,
        max_queue_texts=2,
    )
    two = encoder.pad(encoder.encode(TEXTS[:2]))
    try:
        first = asyncio.ensure_future(batcher.run(two))
        await asyncio.sleep(0.05)  # queued, waiting out the delay

        with pytest.raises(Overloaded) as refused:
            await batcher.run(encoder.pad(encoder.encode(["one more"])))
        assert refused.value.headers == {"Retry-After": "1"}
        assert (await first).outputs.probabilities.shape == (2, 2)
        assert (await batcher.run(two)).outputs.probabilities.shape == (2, 2)
    finally:
        await batcher.close()


def test_concurrent_requests_through_the_app_answer_as_unbatched_ones(
    shipped_repository: Path,
) -> None:
    plain = cpu_settings(shipped_repository, batching=False)
    batched = cpu_settings(shipped_repository, batch_max_size=4, batch_max_delay_ms=20)
    with TestClient(create_app(plain)) as client:
        expected = [client.post("/v1/predict", json={"text": t}).json() for t in TEXTS]
    with TestClient(create_app(batched)) as client, ThreadPoolExecutor(len(TEXTS)) as pool:
        answers = list(pool.map(lambda t: client.post("/v1/predict", json={"text": t}), TEXTS))
        multi = client.post("/v1/predict", json={"texts": TEXTS})

    assert [answer.status_code for answer in answers] == [200] * len(TEXTS)
    for got, want in zip([a.json() for a in answers], expected, strict=True):
        _assert_same_answer(got, want)
    for got, want in zip(multi.json()["predictions"], expected, strict=True):
        _assert_same_answer({**multi.json(), "predictions": [got]}, want)


def test_a_full_queue_is_503_with_retry_after_and_the_error_body(
    shipped_repository: Path,
) -> None:
    # batches of up to 32 texts wait out the delay, whatever the default's own hint
    settings = cpu_settings(
        shipped_repository,
        batch_max_delay_ms=1000,
        batch_queue_texts=1,
        batch_max_sizes={DEFAULT_MODEL: 32},
    )
    with TestClient(create_app(settings)) as client:
        first: dict[str, Any] = {}
        waiting = threading.Thread(
            target=lambda: first.update(r=client.post("/v1/predict", json={"text": "fine"}))
        )
        waiting.start()
        time.sleep(0.3)
        refused = client.post("/v1/predict", json={"text": "too many"})
        waiting.join()
        after = client.post("/v1/predict", json={"text": "fine again"})

    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.json() == {
        "error": {
            "code": "overloaded",
            "message": "The server is busy: 1 texts are waiting, the queue holds 1. "
            "Retry after 1 s.",
            "details": {"queued": 1, "limit": 1, "retry_after_s": 1},
        }
    }
    assert first["r"].status_code == 200
    assert after.status_code == 200


def test_a_full_queue_refuses_before_the_body_is_read_on_every_inference_route(
    shipped_repository: Path,
) -> None:
    # Room for one text: while the first waits out its delay, no request of up to 64 fits.
    settings = cpu_settings(
        shipped_repository,
        batch_max_delay_ms=1000,
        batch_queue_texts=64,
        batch_max_sizes={DEFAULT_MODEL: 32},
    )
    with TestClient(create_app(settings)) as client:
        name = client.get("/v1/models").json()["default_model"]
        waiting = threading.Thread(target=lambda: client.post("/v1/predict", json={"text": "ok"}))
        waiting.start()
        time.sleep(0.3)
        # Not JSON: a request whose body were parsed would be answered 422.
        refused = {
            path: client.post(
                path, content=b"{not json", headers={"content-type": "application/json"}
            )
            for path in (
                "/v1/predict",
                f"/v1/models/{name}/predict",
                f"/v2/models/{name}/infer",
                f"/v2/models/{name}/versions/1/infer",
                f"/v1/models/{name}:predict",
                "/predict",
            )
        }
        unknown = client.post("/v1/models/no-such-model/predict", json={"text": "ok"})
        waiting.join()
        after = client.post("/v1/predict", content=b"{not json")

    for path, answer in refused.items():
        assert (path, answer.status_code, answer.headers["retry-after"]) == (path, 503, "1")
    assert refused["/v1/predict"].json()["error"]["code"] == "overloaded"
    assert refused[f"/v2/models/{name}/infer"].json()["error"].startswith("The server is busy")
    assert refused[f"/v1/models/{name}:predict"].json()["error"].startswith("The server is busy")
    assert refused["/predict"].json()["error_type"] == "overloaded"
    assert unknown.status_code == 404
    assert after.status_code == 422


def _assert_same_answer(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert (got["model"], got["version"]) == (want["model"], want["version"])
    (g,), (w,) = got["predictions"], want["predictions"]
    assert (g["label"], g["truncated"]) == (w["label"], w["truncated"])
    assert g["probabilities"] == pytest.approx(w["probabilities"], abs=1e-6)
    assert [(t["text"], t["start"], t["end"]) for t in g["tokens"]] == [
        (t["text"], t["start"], t["end"]) for t in w["tokens"]
    ]
    assert [t["attention"] for t in g["tokens"]] == pytest.approx(
        [t["attention"] for t in w["tokens"]], abs=1e-6
    )


def test_a_models_batch_size_setting_overrides_its_hint_and_its_hints_hold(
    shipped_repository: Path,
) -> None:
    settings = cpu_settings(shipped_repository, batch_max_sizes={"lstm": 1})
    with TestClient(create_app(settings)) as client:
        registry = client.app.state.registry  # type: ignore[attr-defined]
        sizes = {p.manifest.name: p.runner.max_batch_size for p in registry.served()}
        grouped = {p.manifest.name for p in registry.served() if p.runner.group_by_length}
        answer = client.post("/v1/models/lstm/predict", json={"texts": TEXTS})

    assert sizes["lstm"] == 1
    assert sizes["bilstm-additive"] == settings.batch_max_size
    # the pretrained encoder's own serving hint, from its manifest
    assert sizes["minilm-attention"] == 8
    assert grouped == {"minilm-attention"}  # its padded length is what it pays for
    assert answer.status_code == 200
    assert len(answer.json()["predictions"]) == len(TEXTS)


class HeadsRecordingRunner(SessionRunner):
    """The real session runner, recording each batch's rows and whether it computed heads."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.batches: list[tuple[int, bool]] = []

    def compute(self, batch: PaddedBatch, heads: bool = False) -> GraphOutputs:
        self.batches.append((batch.rows, heads))
        return super().compute(batch, heads)


@pytest.mark.anyio
async def test_heads_ride_the_batcher_apart_and_match_an_unbatched_run(
    shipped_repository: Path,
) -> None:
    model = load_artifact(
        shipped_repository / "transformer" / "1", SessionConfig(providers=(CPU,), exact=True)
    )
    encoder = model.encoder
    inner = HeadsRecordingRunner(model.session)
    batcher = Batcher(inner, encoder.pad_id, 3, max_delay_ms=50, max_queue_texts=64)
    batch = encoder.pad(encoder.encode(TEXTS))

    try:
        with_heads, plain = await asyncio.gather(
            batcher.run(batch, heads=True), batcher.run(encoder.pad(encoder.encode(["fine"])))
        )
    finally:
        await batcher.close()

    # the 8-text heads request rides in batches of 3, 3 and 2; the plain one never joins them
    assert sorted(inner.batches) == [(1, False), (2, True), (3, True), (3, True)]
    assert plain.outputs.heads is None
    alone = SessionRunner(model.session).compute(batch, heads=True)
    assert with_heads.outputs.heads is not None and alone.heads is not None
    for row, item in enumerate(encoder.encode(TEXTS)):
        n = len(item.ids)  # a text's own tokens: padding rows and columns differ by batch
        np.testing.assert_allclose(
            with_heads.outputs.heads[row, :, :, :n, :n], alone.heads[row, :, :, :n, :n], atol=1e-5
        )
    np.testing.assert_allclose(with_heads.outputs.probabilities, alone.probabilities, atol=1e-5)


@pytest.mark.anyio
async def test_a_queue_past_its_time_budget_refuses_with_the_expected_wait(
    loaded_model: LoadedModel,
) -> None:
    encoder = loaded_model.encoder
    batcher = Batcher(
        SessionRunner(loaded_model.session),
        encoder.pad_id,
        max_batch_size=64,
        max_delay_ms=300,
        max_queue_texts=1000,
        max_wait_s=0.001,
    )
    eight = encoder.pad(encoder.encode(TEXTS))
    try:
        await batcher.run(eight)  # measures the model's time per text
        assert batcher.ms_per_text is not None and batcher.ms_per_text > 0
        first = asyncio.ensure_future(batcher.run(eight))
        await asyncio.sleep(0.05)  # queued, waiting out the delay

        with pytest.raises(QueueTooSlow) as refused:
            await batcher.run(eight)
        await first
    finally:
        await batcher.close()

    details = refused.value.details
    assert details is not None and details["queued"] == 8
    assert details["expected_wait_s"] > details["limit_s"] == 0.001
    assert refused.value.headers == {"Retry-After": "1"}


@pytest.mark.anyio
async def test_a_request_cancelled_while_queued_leaves_the_queue_and_is_never_run(
    loaded_model: LoadedModel,
) -> None:
    inner = RecordingRunner(loaded_model.session)
    encoder = loaded_model.encoder
    batcher = Batcher(inner, encoder.pad_id, 64, max_delay_ms=200, max_queue_texts=64)
    kept, left = (encoder.pad(encoder.encode(texts)) for texts in (TEXTS[:2], TEXTS[2:7]))
    try:
        answered = asyncio.ensure_future(batcher.run(kept))
        abandoned = asyncio.ensure_future(batcher.run(left))
        await asyncio.sleep(0.05)
        abandoned.cancel()
        await asyncio.sleep(0)
        assert batcher.expected_wait_ms() == 2 * (batcher.ms_per_text or UNMEASURED_MS_PER_TEXT)
        assert batcher.refusal(62) is None  # the five cancelled texts no longer count
        await answered
    finally:
        await batcher.close()

    assert [rows for rows, _ in inner.shapes] == [2]


class OverlapRunner(SessionRunner):
    """The real session runner, each batch held a moment, counting how many computed at once."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.computing = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def compute(self, batch: PaddedBatch, heads: bool = False) -> GraphOutputs:
        with self._lock:
            self.computing += 1
            self.most_at_once = max(self.most_at_once, self.computing)
        try:
            time.sleep(0.2)  # long enough for every batch dispatched at once to start
            return super().compute(batch, heads)
        finally:
            with self._lock:
                self.computing -= 1


def _in_pairs(runner: SessionRunner, pad_id: int, concurrent: int) -> Batcher:
    """Batches of two texts, taken as soon as they wait, `concurrent` computing at once."""
    return Batcher(
        runner,
        pad_id,
        max_batch_size=2,
        max_delay_ms=0,
        max_queue_texts=64,
        max_concurrent_batches=concurrent,
    )


@pytest.mark.anyio
@pytest.mark.parametrize("concurrent", [1, 2, 3])
async def test_up_to_the_concurrency_batches_compute_at_once_and_answer_as_alone(
    loaded_model: LoadedModel, concurrent: int
) -> None:
    inner = OverlapRunner(loaded_model.session)
    encoder = loaded_model.encoder
    batcher = _in_pairs(inner, encoder.pad_id, concurrent)

    batched = await _each_alone_at_once(batcher, encoder, TEXTS)  # 8 texts: 4 batches or more

    assert inner.most_at_once == concurrent
    alone = _one_by_one(loaded_model, TEXTS)
    assert all(
        np.allclose(computed.outputs.probabilities, one.probabilities, atol=1e-6)
        and np.allclose(computed.outputs.attention, one.attention, atol=1e-6)
        for computed, one in zip(batched, alone, strict=True)
    )


@pytest.mark.anyio
async def test_closing_answers_the_requests_of_batches_still_computing(
    loaded_model: LoadedModel,
) -> None:
    encoder = loaded_model.encoder
    batcher = _in_pairs(OverlapRunner(loaded_model.session), encoder.pad_id, concurrent=2)
    requests = [
        asyncio.ensure_future(batcher.run(encoder.pad(encoder.encode([text])))) for text in TEXTS
    ]
    await asyncio.sleep(0.05)  # two batches computing, the rest queued

    await batcher.close()

    outcomes = await asyncio.gather(*requests, return_exceptions=True)
    assert all(isinstance(outcome, ModelNotReady) for outcome in outcomes), outcomes


@pytest.mark.anyio
async def test_a_text_is_computed_now_only_while_nothing_waits_or_computes(
    loaded_model: LoadedModel,
) -> None:
    encoder = loaded_model.encoder
    session = SessionRunner(loaded_model.session, inline_below_ms=60_000.0)
    batcher = Batcher(session, encoder.pad_id, 32, 0, max_queue_texts=4096)
    one = encoder.pad(encoder.encode(TEXTS[1:2]))
    queued = await batcher.run(one)  # measures the model's time a text

    many = asyncio.ensure_future(batcher.run(encoder.pad(encoder.encode(TEXTS * 200))))
    await asyncio.sleep(0)  # 50 batches queued, the first about to compute
    assert batcher.run_now(one) is None
    await many
    await asyncio.sleep(0)  # the last batch's task leaves the batcher's computing set
    now = batcher.run_now(one)

    assert now is not None
    np.testing.assert_array_equal(now.outputs.probabilities, queued.outputs.probabilities)
    await batcher.close()


def _texts_and_batches(exposition: str, model: str) -> tuple[float, float]:
    """The texts `model` has computed so far, and the batches they computed in (/metrics)."""
    totals = {}
    for kind in ("sum", "count"):
        prefix = f'attnserve_batch_size_{kind}{{model="{model}"}} '
        [line] = [line for line in exposition.splitlines() if line.startswith(prefix)]
        totals[kind] = float(line.removeprefix(prefix))
    return totals["sum"], totals["count"]


def test_texts_arriving_together_share_batches_though_a_lone_one_computes_on_the_loop(
    shipped_repository: Path,
) -> None:
    """A lone text of the word model computes on the event loop: requests arriving together
    must still queue and share batches, not each compute alone in turn."""
    settings = cpu_settings(shipped_repository, default_model=WORD_MODEL)
    with serve(create_app(settings)) as url:
        with httpx.Client(base_url=url) as client:
            for text in TEXTS:  # the model's lone text measured: under the limit
                assert client.post("/v1/predict", json={"text": text}).status_code == 200
            before = _texts_and_batches(client.get("/metrics").text, WORD_MODEL)

        async def together() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                return await asyncio.gather(
                    *(client.post("/v1/predict", json={"text": text}) for text in TEXTS * 8)
                )

        answers = asyncio.run(together())
        with httpx.Client(base_url=url) as client:
            after = _texts_and_batches(client.get("/metrics").text, WORD_MODEL)

    assert [answer.status_code for answer in answers] == [200] * len(TEXTS) * 8
    texts, batches = after[0] - before[0], after[1] - before[1]
    assert texts == len(TEXTS) * 8
    # 3 or 4 batches where this was written; 4 to 44 when each request decided alone
    assert batches < texts / 6, f"{texts} texts in {batches} batches"
