"""When to try again: 503 answers and refused connections, with exponential backoff."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY_STATUS = 503


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all; between them, the server's Retry-After when it sends one
    (capped at `max_retry_after_s`), else `backoff_s * 2**retry` (capped at `max_backoff_s`)
    plus up to `jitter` of it at random, so that many clients do not retry in step."""

    attempts: int = 4
    backoff_s: float = 0.25
    max_backoff_s: float = 8.0
    max_retry_after_s: float = 30.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def delay(self, retry: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry number `retry` (0 for the first retry)."""
        server_says = parse_retry_after(retry_after)
        if server_says is not None:
            return min(server_says, self.max_retry_after_s)
        backoff = min(self.backoff_s * 2.0**retry, self.max_backoff_s)
        return backoff * (1.0 + random.uniform(0.0, self.jitter))


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
