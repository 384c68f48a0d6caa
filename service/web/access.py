"""Who is asking, how often, and what the service is doing.

- API keys: ``Authorization: Bearer <key>`` (or ``X-API-Key``). Keys are required whenever the
  service listens beyond loopback (setting ``api_keys``: ``auto``, ``required``, ``off``); the
  pages then ask for a key once (``/signin``) and keep the key's name in the signed session
  cookie, checking on every request that the key has not been revoked. A key
  that is sent is always checked, even where keys are not required.
- Rate limits: per key (per address without one), a fixed one-minute window; counted in Redis
  when a broker is configured, so every service process shares one budget, else in memory.
  Over the limit: 429 with ``Retry-After``.
- ``/metrics``: Prometheus text format (requests, latencies, verdicts, queue depth).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from flask import Flask, Response, g, redirect, request, session, url_for
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from werkzeug.wrappers import Response as BaseResponse

from service.pipeline import abandoned_stages
from service.store import Viewer
from service.web.errors import error_response

if TYPE_CHECKING:
    from service.store import Store

log = logging.getLogger(__name__)

# Paths that never need a key or count against a limit.
_OPEN_PREFIXES = ("/healthz", "/readyz", "/static/")


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

    def __init__(self, store: Store) -> None:
        self.store = store

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
            depth.add_metric([], self.store.queue_depth())
        except Exception as exc:  # a scrape must not fail because the database is busy
            log.warning("queue depth unavailable: %s", exc)
            return
        yield depth


def make_metrics(store: Store) -> Metrics:
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
    registry.register(_StoreCollector(store))
    return Metrics(registry, requests, latency, verdicts)


def presented_key() -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return request.headers.get("X-API-Key") or None


def actor() -> str:
    """Who is asking, for the audit log and ownership of batches, reports and banks."""
    return str(g.get("actor") or f"ip:{request.remote_addr or 'unknown'}")


def viewer() -> Viewer | None:
    """Whom ownership checks apply to: the caller when keys are required; None (no checks)
    on a keyless loopback service, which has a single trusted user."""
    from service.web import state

    if not state().keys_required:
        return None
    return Viewer(actor(), bool(g.get("admin")))


def init_app(app: Flask) -> None:
    from service.web import state

    @app.before_request
    def _gate() -> tuple[Response, int] | None:
        """The gate's rules (as under waitress, where they ran before the body arrived)."""
        g.started = time.perf_counter()
        st = state()
        length = request.content_length
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        refusal = st.gate.check(
            request.method,
            request.path,
            {k.lower(): v for k, v in request.headers.items()},
            has_body=chunked or bool(length),
            length=None if chunked else length,
        )
        if refusal is not None:
            response, status = error_response(refusal.status, refusal.code, refusal.message)
            for name, value in refusal.headers:
                response.headers[name] = value
            return response, status
        # the route's own limit also binds a chunked body, which declares no length
        request.max_content_length = (
            st.gate.limits.limit(request.endpoint, request.headers.get("Content-Type", "")) or None
        )
        if request.endpoint in ("batches.create", "pages.batch_create", "pages.banks_add"):
            request.max_form_parts = st.config.max_batch_files + 20
        return None

    @app.before_request
    def _access() -> tuple[Response, int] | BaseResponse | None:
        path = request.path
        if path.startswith(_OPEN_PREFIXES):
            return None
        st = state()
        api = path.startswith("/v1/") or path == "/metrics"
        key_value = presented_key() if api else None
        limit = st.config.rate_limit_per_minute
        page_key = session.get("key_name") if not api else None
        if key_value is not None:
            key = st.store.check_key(key_value)
            if key is None:
                return _unauthorized("the API key is unknown or revoked")
            g.actor, g.admin = f"key:{key.name}", key.admin
            limit = key.rate_per_minute or limit
        elif isinstance(page_key, str) and (key := st.store.live_key(page_key)) is not None:
            # signed in on the page (revocation ends it at once)
            g.actor, g.admin = f"key:{key.name}", key.admin
            limit = key.rate_per_minute or limit
        elif st.keys_required:
            if api:
                return _unauthorized(
                    "this server needs an API key: send 'Authorization: Bearer <key>'"
                )
            session.pop("key_name", None)
            g.actor = None
            if request.endpoint != "pages.signin":
                target = request.full_path if request.method == "GET" else request.path
                return redirect(url_for("pages.signin", next=target.rstrip("?")), 303)
        else:
            g.actor = f"ip:{request.remote_addr or 'unknown'}"
        if path == "/metrics":
            return None
        who = g.actor or f"ip:{request.remote_addr}"
        wait = st.limiter.hit(who, limit)
        if wait is not None:
            retry = max(1, int(wait + 0.999))
            response, status = error_response(
                429, "rate_limited", f"too many requests; at most {limit} a minute. Retry later."
            )
            response.headers["Retry-After"] = str(retry)
            return response, status
        if request.endpoint in HEAVY_ENDPOINTS:
            refused = st.slots.acquire(who)
            if refused is not None:
                response, status = error_response(*refused)
                response.headers["Retry-After"] = "1" if status == 429 else "2"
                return response, status
            g.slot = who
        return None

    @app.teardown_request
    def _release_slot(_exc: BaseException | None) -> None:
        who = g.pop("slot", None)
        if who is not None:
            state().slots.release(who)

    @app.after_request
    def _count(response: Response) -> Response:
        st = app.extensions.get("shingan")
        if st is None or request.path.startswith("/static/"):
            return response
        route = request.url_rule.rule if request.url_rule else "unmatched"
        st.metrics.requests.labels(route, request.method, str(response.status_code)).inc()
        started = g.get("started")
        if started is not None:
            st.metrics.latency.labels(route).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        st = state()
        body = generate_latest(st.metrics.registry)
        return Response(body, mimetype="text/plain; version=0.0.4")


def _unauthorized(message: str) -> tuple[Response, int]:
    response, status = error_response(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="shingan"'
    return response, status


def count_verdict(metrics: Metrics, report: dict[str, Any]) -> None:
    metrics.verdicts.labels(report["verdict"]["label"]).inc()
