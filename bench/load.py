"""Load generators for the reliability scripts: closed loop (capacity) and open loop (offered rate).

Open loop means requests start on a fixed schedule whatever the server does, as independent
users would send them: an overloaded server cannot slow the sender down, so queueing shows.
Everything targets 127.0.0.1 and is bounded in time and in requests outstanding.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

DATA = (
    Path(__file__).resolve().parent.parent
    / "data/sentiment-labelled-sentences/amazon_cells_labelled.txt"
)

# A heavy request (many texts of real lengths), so the server, not this client, is the bottleneck.
TEXTS_PER_REQUEST = 64


def request_body(
    texts: int = TEXTS_PER_REQUEST, sentences_per_text: int = 1, detail: str | None = None
) -> bytes:
    """`{"texts": [...]}`: review sentences of the shipped data, `sentences_per_text` to a text
    (and `"detail"`, when given)."""
    lines = DATA.read_text(encoding="utf-8").splitlines()
    pool = [line.split("\t")[0] for line in lines if "\t" in line]
    n = sentences_per_text
    body: dict[str, object] = {
        "texts": [" ".join(pool[(i * n + j) % len(pool)] for j in range(n)) for i in range(texts)]
    }
    if detail is not None:
        body["detail"] = detail
    return json.dumps(body).encode()


@dataclass
class Outcome:
    """One request: HTTP status (0: transport error), seconds taken, its Retry-After and, for
    an error answer, the code its body gives (`overloaded`, `request_timeout`...)."""

    status: int
    seconds: float
    retry_after: str | None = None
    error: str | None = None
    code: str | None = None

    @property
    def kind(self) -> str:
        """ok (200), rejected (429/503 with Retry-After: overload, as designed) or error."""
        if self.status == 200:
            return "ok"
        if self.status in (429, 503) and self.retry_after is not None:
            return "rejected"
        return "error"


@dataclass
class Phase:
    """The outcomes of one phase of load, with the figures the reports quote."""

    name: str
    offered_rps: float
    seconds: float
    outcomes: list[Outcome] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)

    @property
    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind == "ok"]

    @property
    def rejected(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind == "rejected"]

    @property
    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind == "error"]

    def codes(self) -> Counter[str]:
        """How many answers gave each error code."""
        return Counter(o.code for o in self.outcomes if o.code is not None)

    def summary(self) -> str:
        return (
            f"{self.name}: offered {self.offered_rps:.0f} req/s for {self.seconds:.0f} s, "
            f"{len(self.outcomes)} sent: {len(self.ok)} ok "
            f"(p50 {_ms(percentile(self.ok, 50))}, p99 {_ms(percentile(self.ok, 99))}), "
            f"{len(self.rejected)} rejected with Retry-After "
            f"(p99 {_ms(percentile(self.rejected, 99))}), {len(self.errors)} errors"
            + (f"; error codes {dict(sorted(self.codes().items()))}" if self.codes() else "")
            + (
                f" {sorted({o.error or str(o.status) for o in self.errors})[:3]}"
                if self.errors
                else ""
            )
            + (
                f"; server RSS {min(self.rss_mb):.0f}-{max(self.rss_mb):.0f} MB"
                if self.rss_mb
                else ""
            )
        )


def percentile(outcomes: list[Outcome], q: float) -> float | None:
    """The q-th percentile of the outcomes' seconds; None for none."""
    return percentile_of([o.seconds for o in outcomes], q)


def percentile_of(values: list[float], q: float) -> float | None:
    """The q-th percentile of `values` (inclusive method); None for none."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


async def _send(client: httpx.AsyncClient, url: str, body: bytes) -> Outcome:
    start = time.perf_counter()
    try:
        response = await client.post(
            url, content=body, headers={"content-type": "application/json"}
        )
        await response.aread()
    except httpx.HTTPError as error:
        return Outcome(0, time.perf_counter() - start, error=type(error).__name__)
    seconds = time.perf_counter() - start
    code = None
    if response.status_code != 200:
        with suppress(ValueError, KeyError, TypeError):
            code = str(response.json()["error"]["code"])
    return Outcome(response.status_code, seconds, response.headers.get("retry-after"), code=code)


def _client(max_connections: int) -> httpx.AsyncClient:
    # Idle connections expire here before Uvicorn closes them (5 s): no request races a close.
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=2.0,
    )
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0))


async def closed_loop(url: str, body: bytes, concurrency: int, seconds: float) -> Phase:
    """`concurrency` clients each sending back to back: the rate the server sustains.

    Keep `concurrency` times the texts per request within the server's queue, or some are
    refused and the rate measured is lower than the server's."""
    phase = Phase("capacity", 0.0, seconds)
    deadline = time.perf_counter() + seconds

    async def user(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            phase.outcomes.append(await _send(client, url, body))

    async with _client(concurrency) as client:
        await asyncio.gather(*(user(client) for _ in range(concurrency)))
    phase.offered_rps = len(phase.ok) / seconds  # what it served, not what it refused
    return phase


async def open_loop(
    name: str,
    url: str,
    body: bytes,
    rate: float,
    seconds: float,
    rss: Callable[[], float] | None = None,
    max_outstanding: int = 1000,
) -> Phase:
    """Starts `rate` requests a second for `seconds`, whatever the answers; samples RSS (MB)."""
    phase = Phase(name, rate, seconds)
    tasks: set[asyncio.Task[None]] = set()

    async def one(client: httpx.AsyncClient) -> None:
        phase.outcomes.append(await _send(client, url, body))

    async with _client(max_outstanding) as client:
        start = time.perf_counter()
        next_sample = start
        for index in range(int(rate * seconds)):
            now = time.perf_counter()
            if rss is not None and now >= next_sample:
                phase.rss_mb.append(rss())
                next_sample = now + 0.5
            delay = start + index / rate - now
            if delay > 0:
                await asyncio.sleep(delay)
            if len(tasks) >= max_outstanding:  # the client's own bound: count it as a failure
                phase.outcomes.append(Outcome(0, 0.0, error="client_outstanding_limit"))
                continue
            task = asyncio.create_task(one(client))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        while tasks:
            if rss is not None:
                phase.rss_mb.append(rss())
            await asyncio.wait(tasks, timeout=0.5)
        if rss is not None:
            phase.rss_mb.append(rss())
    return phase
