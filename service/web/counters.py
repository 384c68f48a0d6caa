"""The counters a request passes: rate limits per key or address (in Redis when a broker is
configured, else in memory), concurrency slots for the endpoints that analyse media, and the
Prometheus metrics behind ``/metrics``. No Flask request state: :mod:`service.web.access` applies
them to requests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from service.pipeline import abandoned_stages

if TYPE_CHECKING:
    from service.store import BatchRepository

log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    def hit(self, who: str, limit: int) -> float | None:
        """Count one request; None if allowed, else seconds until it would be."""


class MemoryRateLimiter:
    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}

    def hit(self, who: str, limit: int) -> float | None:
        now = time.time()
        window = int(now // self.window_s)
        with self._lock:
            start, count = self._counts.get(who, (window, 0))
            if start != window:
                count = 0
                if len(self._counts) > 100_000:  # forget old windows of many one-off clients
                    self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            count += 1
            self._counts[who] = (window, count)
        if count > limit:
            return (window + 1) * self.window_s - now
        return None


class RedisRateLimiter:
    """The same fixed window, counted in Redis so several service processes share it."""

    def __init__(self, url: str, window_s: int = 60) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.window_s = window_s

    def hit(self, who: str, limit: int) -> float | None:
        now = time.time()
        window = int(now // self.window_s)
        key = f"shingan:ratelimit:{who}:{window}"
        try:
            pipe = self.client.pipeline()
            pipe.incr(key)
            pipe.expire(key, self.window_s * 2)
            count = int(pipe.execute()[0])
        except Exception as exc:  # Redis down: serve rather than refuse everyone
            log.warning("rate limiter unavailable: %s", exc)
            return None
        if count > limit:
            return (window + 1) * self.window_s - now
        return None


class ConcurrencyLimiter:
    """Analyses at once, so that no input or client can take every request thread.

    At most ``running`` analyses run (overrunning stages still running count among them); up
    to ``waiting`` more requests wait, each at most ``wait_s``, for a slot; one client (a key,
    or an address without keys) has at most ``per_client`` running or waiting. The request
    threads beyond these stay free for health checks, status pages and downloads. A request
    that cannot wait is answered at once: 429 when its client has too many, 503 when the
    server does.
    """

    def __init__(self, running: int, waiting: int, per_client: int, wait_s: float) -> None:
        self.running_max, self.waiting_max = running, waiting
        self.per_client, self.wait_s = per_client, wait_s
        self._cond = threading.Condition()
        self._held: dict[str, int] = {}
        self._running = 0
        self._waiting = 0

    def acquire(self, who: str) -> tuple[int, str, str] | None:
        """Wait for a slot; None once one is held, else (status, code, message)."""
        with self._cond:
            if self._held.get(who, 0) >= self.per_client:
                return (
                    429,
                    "too_many_concurrent",
                    f"at most {self.per_client} analyses at once per client; wait for one "
                    "to finish",
                )
            if self._running + self._waiting >= self.running_max + self.waiting_max:
                return 503, "busy", "the server is analysing as many files as it can; retry soon"
            self._held[who] = self._held.get(who, 0) + 1
            self._waiting += 1
            deadline = time.monotonic() + self.wait_s
            while self._running + abandoned_stages() >= self.running_max:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._waiting -= 1
                    self._drop(who)
                    return 503, "busy", "no analysis slot came free in time; retry soon"
                # overrunning stages end without notifying: look again at least twice a second
                self._cond.wait(min(left, 0.5))
            self._waiting -= 1
            self._running += 1
            return None

    def release(self, who: str) -> None:
        with self._cond:
            self._running -= 1
            self._drop(who)
            self._cond.notify()

    def _drop(self, who: str) -> None:
        left = self._held.get(who, 0) - 1
        if left > 0:
            self._held[who] = left
        else:
            self._held.pop(who, None)

    def running(self) -> int:
        with self._cond:
            return self._running

    def waiting(self) -> int:
        with self._cond:
            return self._waiting


#: Endpoints that analyse media or store uploads: they take a concurrency slot.
HEAVY_ENDPOINTS = frozenset(
    {
        "api.verify",
        "ui.report",
        "batches.create",
        "pages.batch_create",
        "banks.add_entries",
        "pages.banks_add",
    }
)


@dataclass
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    verdicts: Counter


class _StoreCollector(Collector):
    """Figures read at scrape time: the queue from the database (so it includes every worker),
    abandoned stages from this process."""

    def __init__(self, batches: BatchRepository) -> None:
        self.batches = batches

    def collect(self) -> Iterator[GaugeMetricFamily]:
        abandoned = GaugeMetricFamily(
            "shingan_abandoned_stages",
            "Analysis stages past their deadline still running in this process",
        )
        abandoned.add_metric([], abandoned_stages())
        yield abandoned
        depth = GaugeMetricFamily(
            "shingan_queue_depth", "Batch items waiting for or in analysis (all workers)"
        )
        try:
            depth.add_metric([], self.batches.queue_depth())
        except Exception as exc:  # a scrape must not fail because the database is busy
            log.warning("queue depth unavailable: %s", exc)
            return
        yield depth


def make_metrics(batches: BatchRepository) -> Metrics:
    registry = CollectorRegistry()
    requests = Counter(
        "shingan_http_requests",
        "HTTP requests by route, method and status",
        ["route", "method", "status"],
        registry=registry,
    )
    latency = Histogram(
        "shingan_http_request_duration_seconds",
        "Time to answer a request, by route",
        ["route"],
        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        registry=registry,
    )
    verdicts = Counter(
        "shingan_verdicts",
        "Verdicts given by this process (single checks and batch items), by label",
        ["label"],
        registry=registry,
    )
    registry.register(_StoreCollector(batches))
    return Metrics(registry, requests, latency, verdicts)


def count_verdict(metrics: Metrics, report: dict[str, Any]) -> None:
    metrics.verdicts.labels(report["verdict"]["label"]).inc()
