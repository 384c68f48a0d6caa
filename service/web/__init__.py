"""The Flask application: ``create_app(config)`` and its blueprints.

Blueprints only parse input and render output; analysis happens in :mod:`service.pipeline`.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response

from service.app.jobs import VerifyJobs
from service.app.verify import Verifier
from service.banks import LiveBanks
from service.config import Config, load_config
from service.jobs import CeleryRunner, InProcessRunner, WorkerContext, celery_app
from service.web import previews
from service.web.context import AppState
from service.web.counters import (
    ConcurrencyLimiter,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    count_verdict,
    make_metrics,
)
from service.web.gate import (
    MULTIPART_SLACK,
    Gate,
    RouteLimits,
    default_allowed_hosts,
    session_checker,
)

log = logging.getLogger(__name__)


def create_app(config: Config | Mapping[str, Any] | None = None) -> Flask:
    """Create the Shingan web application.

    ``config`` is a :class:`Config`, a mapping of settings (applied over file and environment
    values, handy in tests), or ``None`` to read the file and environment only.

    Raises:
        service.config.ConfigError: the configuration is unusable (e.g. a missing trust file).
    """
    if not isinstance(config, Config):
        config = load_config(overrides=config)
    store = config.open_store()
    options = config.analyze_options(store=store)
    upload_dir = config.data_dir / "uploads"
    upload_dir.mkdir(parents=True, exist_ok=True)
    media = config.media_store()
    metrics = make_metrics(store.batches)
    runner: InProcessRunner | CeleryRunner
    limiter: RateLimiter
    if config.broker_url:
        runner = CeleryRunner(celery_app(config))
        limiter = RedisRateLimiter(config.broker_url)
    else:
        runner = InProcessRunner(
            WorkerContext(
                store=store,
                media=media,
                options=options,
                webhook_attempts=config.webhook_attempts,
                webhook_backoff_s=config.webhook_backoff_s,
                webhook_allowed_hosts=config.webhook_allowed_hosts,
                on_result=lambda report: count_verdict(metrics, report),
            ),
            workers=config.batch_slots,
            config=config if config.batch_runner == "processes" else None,
        )
        limiter = MemoryRateLimiter()

    app = Flask(__name__)
    app.config["SECRET_KEY"] = _secret_key(config.data_dir)
    app.config["SESSION_COOKIE_SAMESITE"] = "Strict"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    limits = RouteLimits(
        verify=config.limits.max_bytes + MULTIPART_SLACK, batch=config.max_batch_request_bytes
    )
    app.config["MAX_CONTENT_LENGTH"] = limits.largest  # each route's own limit: see the gate
    # Werkzeug spools multipart parts above this size to disk instead of memory.
    app.config["MAX_FORM_MEMORY_SIZE"] = 1024 * 1024
    app.json.sort_keys = False  # type: ignore[attr-defined]
    slots = ConcurrencyLimiter(
        running=config.running_slots,
        waiting=config.waiting_slots,
        per_client=config.per_client_slots,
        wait_s=config.queue_timeout_s,
    )
    app.extensions["shingan"] = AppState(
        config=config,
        options=options,
        upload_dir=upload_dir,
        store=store,
        media=media,
        runner=runner,
        limiter=limiter,
        metrics=metrics,
        keys_required=config.keys_required(),
        gate=Gate(
            app,
            limits=limits,
            keys_required=config.keys_required(),
            allowed_hosts=config.allowed_hosts or default_allowed_hosts(config.host),
            key_valid=lambda key: store.keys.check_key(key) is not None,
            session_key_valid=session_checker(app, store.keys.live_key),
        ),
        slots=slots,
        jobs=VerifyJobs(
            lambda: Verifier(options, store, media),
            upload_dir,
            workers=config.running_slots,
            acquire=slots.acquire,
            release=slots.release,
            pictures=previews.for_upload,
        ),
    )

    from service.web import access, api, banks_api, batches, errors, health, pages, ui

    errors.init_app(app)
    access.init_app(app)
    health.init_app(app)
    api.init_app(app)
    batches.init_app(app)
    banks_api.init_app(app)
    ui.init_app(app)
    pages.init_app(app)
    media.sweep(store.holds)
    media.start_janitor(store.holds)
    if isinstance(options.banks, LiveBanks):
        options.banks.warm_up()
    runner.start()

    @app.after_request
    def _security_headers(response: Response) -> Response:
        # Reports describe one upload; no proxy or browser should keep or re-type them.
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    log.info(
        "shingan app ready (data dir %s, %d trust anchors, %d detectors)",
        config.data_dir,
        len(options.trust.anchors),
        len(options.detectors.detectors),
    )
    return app


def _secret_key(data_dir: Path) -> bytes:
    """The key that signs session cookies (CSRF tokens): made once, kept in the data dir."""
    path = data_dir / "secret_key"
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key
