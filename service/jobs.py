"""Batch jobs: one item at a time through the same ``analyze`` as everything else.

Every item is a row in the store (:mod:`service.store.batches`); a job names only the item's
id. The worker that takes it claims the row, analyses the media kept for it in the media store,
and records the result in one transaction that succeeds only if the item has no result yet. So a
job may be run twice (a worker killed mid-item, a broker that redelivers) without losing or
duplicating anything; identical files in one batch are analysed once ("idempotent by sha256").

Two ways to run jobs:

- :class:`InProcessRunner` (default): threads inside the service. Items are rows, so a restart
  finds the unfinished ones and queues them again.
- Celery (``SHINGAN_BROKER_URL=redis://...``): :func:`celery_app` defines the tasks and
  ``shingan worker`` runs them, on this machine or others sharing the database and media folder.
  Tasks are acknowledged late and re-queued if their worker dies.

When the last item of a batch has its result, the batch is marked done (by exactly one worker)
and its webhook, if any, is called: a POST of the batch status, signed with HMAC-SHA256, retried
with exponential back-off.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from provenance.media import MediaError
from service.media_store import MediaStore
from service.pipeline import AnalyzeOptions, analyze
from service.store import Store
from service.webhooks import deliver_webhook

if TYPE_CHECKING:
    from celery import Celery

    from service.config import Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerContext:
    """What running an item needs: loaded once per worker process."""

    store: Store
    media: MediaStore
    options: AnalyzeOptions
    webhook_attempts: int = 5
    webhook_backoff_s: float = 2.0
    webhook_allowed_hosts: tuple[str, ...] = ()
    on_result: Callable[[dict[str, Any]], None] | None = None


def context_from_config(config: Config, store: Store | None = None) -> WorkerContext:
    """A batch worker's context: the store, the media folder and the loaded pipeline.

    Raises:
        ConfigError: as :meth:`Config.analyze_options`.
    """
    store = store or config.open_store()
    options = config.analyze_options(store=store)
    return WorkerContext(
        store=store,
        media=config.media_store(),
        options=options,
        webhook_attempts=config.webhook_attempts,
        webhook_backoff_s=config.webhook_backoff_s,
        webhook_allowed_hosts=config.webhook_allowed_hosts,
    )


def process_item(item_id: int, ctx: WorkerContext) -> str | None:
    """Run one batch item; returns the batch id if this call completed the batch, else None."""
    batches = ctx.store.batches
    task = batches.claim_item(item_id)
    if task is None:
        return None  # already has its result
    reuse = batches.done_report_for(task.batch_id, task.sha256)
    if reuse is not None:
        batches.finish_item(item_id, reuse=reuse)
    else:
        path = ctx.media.path(task.sha256)
        try:
            options = replace(
                ctx.options,
                language=task.language,
                banks=ctx.options.banks.for_actor(task.actor),
            )
            report = analyze(path, options, filename=task.filename).to_dict()
        except MediaError as exc:
            batches.finish_item(item_id, error=(exc.code, exc.message))
        except FileNotFoundError:
            batches.finish_item(
                item_id, error=("media_missing", "the uploaded file is no longer stored")
            )
        except Exception as exc:  # a bug must not stop a thousand-file batch
            log.exception("item %s failed", item_id)
            batches.finish_item(item_id, error=("internal_error", f"{type(exc).__name__}: {exc}"))
        else:
            if batches.finish_item(item_id, report=report) and ctx.on_result:
                ctx.on_result(report)
    ctx.media.release(task.sha256, ctx.store.holds)
    if batches.complete_batch_if_done(task.batch_id):
        return task.batch_id
    return None


class InProcessRunner:
    """Worker threads inside the service; unfinished items are resumed at start."""

    def __init__(self, ctx: WorkerContext, workers: int = 1) -> None:
        self.ctx = ctx
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._loop, name=f"shingan-job-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        self._queued: set[int] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        for t in self._threads:
            t.start()
        batches = self.ctx.store.batches
        resumed = batches.unfinished_items()
        if resumed:
            log.info("resuming %d unfinished batch items", len(resumed))
        self.submit(resumed)
        for batch_id in batches.unfinished_batches():  # e.g. all items done before a crash
            if batches.complete_batch_if_done(batch_id):
                self._completed(batch_id)
        for batch_id in batches.undelivered_webhooks():
            self._completed(batch_id)

    def submit(self, item_ids: Iterable[int]) -> None:
        with self._lock:
            for i in item_ids:
                if i not in self._queued:
                    self._queued.add(i)
                    self._queue.put(i)

    def _loop(self) -> None:
        while True:
            item_id = self._queue.get()
            if item_id is None:
                return
            try:
                done = process_item(item_id, self.ctx)
                if done:
                    self._completed(done)
            except Exception:  # the store is unreachable, say; keep the thread alive
                log.exception("batch item %s could not be processed", item_id)
            finally:
                with self._lock:
                    self._queued.discard(item_id)

    def _completed(self, batch_id: str) -> None:
        if self.ctx.store.batches.webhook_target(batch_id) is None:
            return
        threading.Thread(
            target=deliver_webhook,
            args=(self.ctx.store.batches, batch_id),
            kwargs={
                "attempts": self.ctx.webhook_attempts,
                "backoff_s": self.ctx.webhook_backoff_s,
                "allowed_hosts": self.ctx.webhook_allowed_hosts,
            },
            name=f"shingan-webhook-{batch_id}",
            daemon=True,
        ).start()

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)


class CeleryRunner:
    """Sends each item to the broker; ``shingan worker`` processes run them."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def start(self) -> None:
        """Nothing to resume: the broker keeps unacknowledged tasks."""

    def submit(self, item_ids: Iterable[int]) -> None:
        task = self.app.tasks["shingan.analyze_item"]
        for i in item_ids:
            task.apply_async(args=[i])

    def stop(self) -> None:
        """Workers run elsewhere."""


# --- Celery ---------------------------------------------------------------------------------

_WORKER_CTX: WorkerContext | None = None


def worker_context(config: Config) -> WorkerContext:
    """The context of this worker process, built on first use (after any fork)."""
    global _WORKER_CTX
    if _WORKER_CTX is None:
        _WORKER_CTX = context_from_config(config)
    return _WORKER_CTX


def celery_app(config: Config) -> Celery:
    """The Celery application for ``config.broker_url``: the same pipeline, run by workers."""
    from celery import Celery

    app = Celery("shingan", broker=config.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,  # a task is acknowledged only after it ran...
        task_reject_on_worker_lost=True,  # ...and re-queued if its worker died
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            # A task whose worker died without acknowledging it goes back to the queue after
            # this long (so it must be longer than the slowest item, or items run twice,
            # harmlessly but wastefully).
            "visibility_timeout": config.broker_visibility_timeout_s,
            "unacked_restore_interval": min(10.0, config.broker_visibility_timeout_s / 2),
        },
        worker_hijack_root_logger=False,
        task_default_queue="shingan",
    )

    @app.task(name="shingan.analyze_item")  # type: ignore[untyped-decorator]
    def analyze_item(item_id: int) -> None:
        ctx = worker_context(config)
        done = process_item(item_id, ctx)
        if done and ctx.store.batches.webhook_target(done) is not None:
            app.tasks["shingan.deliver_webhook"].apply_async(args=[done])

    @app.task(name="shingan.deliver_webhook")  # type: ignore[untyped-decorator]
    def webhook(batch_id: str) -> None:
        ctx = worker_context(config)
        deliver_webhook(
            ctx.store.batches,
            batch_id,
            attempts=ctx.webhook_attempts,
            backoff_s=ctx.webhook_backoff_s,
            allowed_hosts=ctx.webhook_allowed_hosts,
        )

    return app
