"""The retry policy's waits: the server's Retry-After when given, else capped backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from attnserve_client import RetryPolicy
from attnserve_client.retry import parse_retry_after


def test_backoff_doubles_up_to_its_cap_without_jitter() -> None:
    policy = RetryPolicy(backoff_s=0.5, max_backoff_s=3.0, jitter=0.0)

    assert [policy.delay(retry) for retry in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_adds_at_most_its_fraction() -> None:
    policy = RetryPolicy(backoff_s=1.0, jitter=0.25)

    delays = [policy.delay(0) for _ in range(200)]

    assert all(1.0 <= delay <= 1.25 for delay in delays)
    assert len(set(delays)) > 1


def test_retry_after_wins_over_backoff_and_is_capped() -> None:
    policy = RetryPolicy(backoff_s=0.1, max_retry_after_s=20.0)

    assert policy.delay(0, "7") == 7.0
    assert policy.delay(3, "120") == 20.0


def test_retry_after_as_an_http_date() -> None:
    in_ten_seconds = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)

    assert 8.0 <= (parse_retry_after(in_ten_seconds) or 0.0) <= 10.0
    assert parse_retry_after(format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)) == 0


@pytest.mark.parametrize("value", [None, "", "soon", "-3", "1.5"])
def test_absent_or_malformed_retry_after_falls_back_to_backoff(value: str | None) -> None:
    assert parse_retry_after(value) is None
    assert RetryPolicy(backoff_s=0.3, jitter=0.0).delay(0, value) == 0.3


def test_at_least_one_attempt() -> None:
    with pytest.raises(ValueError, match="attempts must be at least 1"):
        RetryPolicy(attempts=0)
