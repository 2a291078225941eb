"""The process and Python runtime series of GET /metrics: `process_*` (CPU, memory, file
descriptors, start time), `python_gc_*` (collections by generation) and `python_info`.

prometheus-client's collectors for them describe the process that runs them. In its
multiprocess mode (PROMETHEUS_MULTIPROC_DIR: several workers behind one port, any of them
answering a scrape) only what each process writes to that directory is merged, so those
collectors do not work there as they are ("custom collectors do not work (e.g. cpu and
memory metrics)", its documentation says). There each worker copies its own collectors'
samples into multiprocess metrics instead: a gauge becomes one series per live worker,
labelled `pid` (multiprocess mode `liveall`), a counter the sum over every worker that ran.
A worker copies them when it answers a scrape or a prediction, at most once a second, so an
idle worker's last figures stand; one that stops cleanly takes its gauges with it (one that
crashes leaves its last figures until the directory is emptied, before the next start).
"""

from __future__ import annotations

import math
import os
import time
from typing import TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.multiprocess import mark_process_dead

_COPY_INTERVAL_S = 1.0
_Metric = TypeVar("_Metric", Counter, Gauge)


def register_runtime_collectors(
    exposed: CollectorRegistry, multiprocess_dir: str | None
) -> WorkerCopies | None:
    """Adds the runtime series to the `exposed` registry (the one a scrape reads); in
    multiprocess mode, returns this worker's copies, to keep up to date and close."""
    PlatformCollector(registry=exposed)  # the same in every worker
    if not multiprocess_dir:
        ProcessCollector(registry=exposed)
        GCCollector(registry=exposed)
        return None
    copies = WorkerCopies(multiprocess_dir)
    copies.copy()
    return copies


class WorkerCopies:
    """This worker's process and GC samples, copied into multiprocess gauges and counters."""

    def __init__(self, multiprocess_dir: str) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.closed = False
        self.sources = CollectorRegistry()
        ProcessCollector(registry=self.sources)
        GCCollector(registry=self.sources)
        # The copies are written to the multiprocess directory; no registry of ours reads them.
        self.copies = CollectorRegistry()
        self.gauges: dict[str, Gauge] = {}
        self.counters: dict[str, Counter] = {}
        self.counted: dict[tuple[str, tuple[str, ...]], float] = {}
        self.copied_at = -math.inf

    def copy(self) -> None:
        """Brings the copies up to date, unless they were a moment ago or the worker stops."""
        now = time.monotonic()
        if self.closed or now - self.copied_at < _COPY_INTERVAL_S:
            return
        self.copied_at = now
        for family in self.sources.collect():
            for sample in family.samples:
                labels = tuple(sample.labels.values())
                if family.type == "counter":
                    # a counter file holds this worker's total: add what it grew since last time
                    counted = self.counted.get((sample.name, labels), 0.0)
                    counter = self._counter(family.name, family.documentation, [*sample.labels])
                    _child(counter, labels).inc(max(sample.value - counted, 0.0))
                    self.counted[sample.name, labels] = max(sample.value, counted)
                else:
                    gauge = self._gauge(family.name, family.documentation, [*sample.labels])
                    _child(gauge, labels).set(sample.value)

    def close(self) -> None:
        """The worker stops: its gauges leave the directory (its counters stay in the sums)."""
        self.closed = True
        mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]

    def _counter(self, name: str, documentation: str, labels: list[str]) -> Counter:
        if name not in self.counters:
            self.counters[name] = Counter(name, documentation, labels, registry=self.copies)
        return self.counters[name]

    def _gauge(self, name: str, documentation: str, labels: list[str]) -> Gauge:
        if name not in self.gauges:
            self.gauges[name] = Gauge(
                name, documentation, labels, registry=self.copies, multiprocess_mode="liveall"
            )
        return self.gauges[name]


def _child(metric: _Metric, labels: tuple[str, ...]) -> _Metric:
    """The metric's series for `labels` (the metric itself when it has none)."""
    return metric.labels(*labels) if labels else metric
