"""/metrics: Prometheus figures, fed from the journal's events through the engine's hooks.

Requests (runs) by state are counted from the journal when scraped; operations
dispatched, failed and retried, re-plans, and the latency of dispatches (intent to
result) are counted as the events are written; planning latency as plans are made.
One registry per server (not the process-wide default), so tests can start several.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from executor.journal import STATUSES, Event

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class _RunsByState(Collector):
    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("ordo_runs", "Orchestration requests (runs) in the journal, by state",
                                   labels=["state"])
        try:
            counts = self._counts()   # (counted by the journal: every run read at each scrape, 0.7 s at 20,000)
        except Exception:  # noqa: BLE001 - a scrape while the journal is closed reports nothing
            counts = {}
        for state in (*STATUSES, "crashed"):
            family.add_metric([state], counts.get(state, 0))
        yield family


class Metrics:
    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_RunsByState(counts))
        self.dispatched = Counter("ordo_operations_dispatched", "Operations sent to controllers (intents)",
                                  registry=self.registry)
        self.failed = Counter("ordo_operations_failed", "Operations that failed for good", registry=self.registry)
        self.retried = Counter("ordo_operations_retried", "Operation attempts retried after a transient error",
                               registry=self.registry)
        self.replans = Counter("ordo_replans", "Plans made again during runs", registry=self.registry)
        self.plan_seconds = Histogram("ordo_plan_seconds", "Time to plan a request", buckets=_LATENCY,
                                      registry=self.registry)
        self.dispatch_seconds = Histogram("ordo_dispatch_seconds", "Time from an operation's intent to its result",
                                          buckets=_LATENCY, registry=self.registry)
        self._sent: dict[tuple[int, str], float] = {}
        self._lock = threading.Lock()

    def event(self, ev: Event) -> None:
        if ev.kind == "intent":
            self.dispatched.inc()
            with self._lock:
                self._sent[(ev.run, ev.op or "")] = ev.at
        elif ev.kind in ("result", "failed", "retry"):
            if ev.kind == "failed":
                self.failed.inc()
            elif ev.kind == "retry":
                self.retried.inc()
            with self._lock:
                sent = self._sent.pop((ev.run, ev.op or ""), None)
            if sent is not None:
                self.dispatch_seconds.observe(max(0.0, ev.at - sent))
        elif ev.kind == "replan":
            self.replans.inc()

    def planned(self, seconds: float) -> None:
        self.plan_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
