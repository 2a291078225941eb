"""Overload and soak against the real server process on 127.0.0.1, short and bounded.

The same code as bench/overload.py and bench/soak.py, whose longer runs give the figures in
RELIABILITY.md; here a few seconds each, with bounds loose enough for a busy 2-core CI box.
"""

from __future__ import annotations

import pytest

from attnserve.service.settings import Settings
from bench import overload, soak
from bench.load import percentile

QUEUE_TEXTS = 256  # four 64-text requests wait at most


@pytest.mark.skipif(
    "batch_queue_texts" not in Settings.model_fields,
    reason="needs the bounded batching queue (service/batching.py)",
)
def test_overload_is_refused_fast_and_accepted_requests_stay_bounded() -> None:
    run = overload.run(
        factor=4,
        seconds=4,
        capacity_seconds=3,
        environment={"ATTNSERVE_BATCH_QUEUE_TEXTS": str(QUEUE_TEXTS)},
    )
    print("\n" + "\n".join(run.lines()))
    over, recovery = run.overload, run.recovery
    service_s = 1 / run.capacity.offered_rps  # one request's share of the server

    assert over.errors == []
    assert len(over.rejected) > len(over.outcomes) / 4  # at 4x, most of the excess is refused
    assert all(o.status == 503 and o.retry_after for o in over.rejected)
    # Refused before their bodies are read (service/admission.py): faster than most answers.
    assert (percentile(over.rejected, 99) or 0) < (percentile(over.ok, 50) or 0)
    # Accepted requests wait behind a bounded queue, not behind everything that was offered.
    assert (percentile(over.ok, 99) or 0) < max(10.0, 40 * service_s)
    assert max(over.rss_mb) - over.rss_mb[0] < 100
    # Recovered by itself: a third of capacity is served entirely.
    assert (len(recovery.ok), recovery.errors) == (len(recovery.outcomes), [])


def test_heads_under_overload_are_admitted_only_when_they_can_be_answered_in_time() -> None:
    # every layer's self-attention maps of the transformer: megabytes of JSON an answer
    run = overload.run(
        factor=4,
        seconds=4,
        capacity_seconds=3,
        environment={"ATTNSERVE_BATCH_QUEUE_TEXTS": str(QUEUE_TEXTS)},
        model="transformer",
        detail="heads",
    )
    print("\n" + "\n".join(run.lines()))
    over = run.overload

    assert over.errors == [] and len(over.ok) > 0
    assert run.timed_out == 0, run.overload.codes()  # admitted means answered in time
    assert len(over.rejected) > 0 and set(over.codes()) == {"overloaded"}
    assert (percentile(over.rejected, 99) or 0) < (percentile(over.ok, 50) or 0)
    assert max(over.rss_mb) < 2.5 * run.idle_rss_mb  # 1.92x in bench.overload's 15 s run
    # refused at once by the server's own clock (the client's includes its own busy loop)
    assert run.server_refusals_ms and max(run.server_refusals_ms) < 1000
    assert sorted(run.server_refusals_ms)[len(run.server_refusals_ms) // 2] < 50


def test_a_short_soak_has_no_errors_and_flat_memory() -> None:
    # the fast word model: enough requests in 8 s to see errors and memory move (the default
    # encoder serves 64-text requests a few times a second on 2 cores)
    run = soak.run(seconds=8, load=0.5, capacity_seconds=3, model="bilstm-additive")
    print("\n" + "\n".join(run.lines()))

    assert run.soak.errors == [] and run.soak.rejected == []
    assert len(run.soak.ok) > 20
    assert run.rss_growth_mb < 30
