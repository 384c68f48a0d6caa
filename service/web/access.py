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
import time
from typing import TYPE_CHECKING

from flask import Flask, Response, g, redirect, request, session, url_for
from prometheus_client import generate_latest
from werkzeug.wrappers import Response as BaseResponse

from service.store import Viewer
from service.web.counters import HEAVY_ENDPOINTS
from service.web.errors import error_response
from service.web.openapi import Answer, Operation, documented

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

# Paths that never need a key or count against a limit.
_OPEN_PREFIXES = ("/healthz", "/readyz", "/static/")


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
    from service.web.context import state

    if not state().keys_required:
        return None
    return Viewer(actor(), bool(g.get("admin")))


def init_app(app: Flask) -> None:
    from service.web.context import state

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
            key = st.store.keys.check_key(key_value)
            if key is None:
                return _unauthorized("the API key is unknown or revoked")
            g.actor, g.admin = f"key:{key.name}", key.admin
            limit = key.rate_per_minute or limit
        elif isinstance(page_key, str) and (key := st.store.keys.live_key(page_key)) is not None:
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
    @documented(
        Operation(
            "metrics",
            "Prometheus metrics: requests, latencies, verdicts, queue depth",
            answers={200: Answer("Prometheus text format", media_type="text/plain")},
        )
    )
    def metrics() -> Response:
        st = state()
        body = generate_latest(st.metrics.registry)
        return Response(body, mimetype="text/plain; version=0.0.4")


def _unauthorized(message: str) -> tuple[Response, int]:
    response, status = error_response(401, "unauthorized", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="shingan"'
    return response, status
