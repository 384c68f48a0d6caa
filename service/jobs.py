"""Batch jobs: one item at a time through the same ``analyze`` as everything else.

Every item is a row in the store (:mod:`service.store.batches`); a job names only the item's
id. The worker that takes it claims the row, analyses the media kept for it in the media store,
and records the result in one transaction that succeeds only if the item has no result yet. So a
job may be run twice (a worker killed mid-item, a broker that redelivers) without losing or
duplicating anything; identical files in one batch are analysed once ("idempotent by sha256").

Two ways to run jobs:

- :class:`InProcessRunner` (default): threads inside the service do the store work, and each
  hands the analysis to its own worker process (``batch_runner = "processes"``, the default;
  :mod:`service.analysis_workers` says why) or does it itself (``"threads"``). Items are rows,
  so a restart finds the unfinished ones and queues them again.
- Celery (``SHINGAN_BROKER_URL=redis://...``): :func:`celery_app` defines the tasks and
  ``shingan worker`` runs them, on this machine or others sharing the database and media folder.
  Tasks are acknowledged late and re-queued if their worker dies.

When the last item of a batch has its result, the batch is marked done (by exactly one worker)
and its webhook, if any, is called: a POST of the batch status, signed with HMAC-SHA256, retried
with exponential back-off.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.errors import ShinganError
from service.analysis_workers import (
    AnalysisProcess,
    ItemAnalysis,
    ItemFailure,
    Outcome,
    WorkerDied,
    analyse_item,
)
from service.media_store import MediaStore
from service.pipeline import AnalyzeOptions
from service.store import ItemTask, Store
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


#: Analyses a claimed item's file: (task, path) -> the report's JSON, or why there is none.
Analyse = Callable[[ItemTask, Path], Outcome]


class ItemLeft(ShinganError):
    """Nothing is recorded for the item now: the runner is stopping (the item stays unfinished,
    resumed at the next start), or another worker finished it meanwhile."""

    code = "item_left"


class SameFile:
    """One lock per (batch, sha256), held while an item is analysed: of identical files in a
    batch taken by several threads at once, one is analysed and the others wait, then reuse its
    report."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], tuple[threading.Lock, list[int]]] = {}

    @contextlib.contextmanager
    def hold(self, batch_id: str, sha256: str) -> Iterator[None]:
        key = (batch_id, sha256)
        with self._lock:
            lock, users = self._held.setdefault(key, (threading.Lock(), [0]))
            users[0] += 1
        try:
            with lock:
                yield
        finally:
            with self._lock:
                users[0] -= 1
                if not users[0]:
                    del self._held[key]


def process_item(
    item_id: int,
    ctx: WorkerContext,
    analyse: Analyse | None = None,
    same_file: SameFile | None = None,
) -> str | None:
    """Run one batch item; returns the batch id if this call completed the batch, else None.

    ``analyse`` runs the analysis (default: here, with ``ctx.options``); the store work (the
    claim, an identical file's report reused, the one result, the batch's completion) is done
    here either way. ``same_file``: shared by the threads of one runner.

    Raises:
        ItemLeft: from ``analyse``; nothing is recorded.
    """
    batches = ctx.store.batches
    task = batches.claim_item(item_id)
    if task is None:
        return None  # already has its result
    with same_file.hold(task.batch_id, task.sha256) if same_file else contextlib.nullcontext():
        reuse = batches.done_report_for(task.batch_id, task.sha256)
        if reuse is not None:
            batches.finish_item(item_id, reuse=reuse)
        else:
            path = ctx.media.path(task.sha256)
            if analyse is None:
                outcome = analyse_item(ctx.options, path, task.filename, task.language, task.actor)
            else:
                outcome = analyse(task, path)
            if isinstance(outcome, ItemFailure):
                if outcome.code == "internal_error":  # a bug must not stop a thousand-file batch
                    log.error("item %s failed: %s\n%s", item_id, outcome.message, outcome.detail)
                batches.finish_item(item_id, error=(outcome.code, outcome.message))
            elif batches.finish_item(item_id, report=outcome) and ctx.on_result:
                ctx.on_result(outcome)
    ctx.media.release(task.sha256, ctx.store.holds)
    if batches.complete_batch_if_done(task.batch_id):
        return task.batch_id
    return None


#: Seconds a worker process may wait without an item before it is ended (its memory, models
#: included, goes back to the system); the next item starts it again.
IDLE_S = 60.0


class InProcessRunner:
    """Batch items run by the service itself (no broker); unfinished items resumed at start.

    Threads take items from a queue and do the store work (claim, reuse, result, completion,
    webhooks). With ``config`` (the ``processes`` runner, the default) the analysis is done by
    ``workers`` worker processes (:class:`service.analysis_workers.AnalysisProcess`), each
    started with the first item it gets and ended after :data:`IDLE_S` without one. There are
    two threads per process, which take a free process for each analysis and give it back before
    they record the result: while one thread writes to the store, the other keeps the process
    busy (the store work of an item, 10-15 ms on SQLite, would otherwise leave the process
    idle a sixth of the time). A process that dies during an item (killed, out of memory) is
    replaced and the item tried once more in the new one (its ``attempts`` counts both); a
    second death is the item's ``internal_error``, and the batch goes on.

    Without ``config`` (``threads``), ``workers`` threads analyse the items themselves, in the
    service's process: less memory, but they share one GIL and the service's malloc settings
    (module docstring of :mod:`service.analysis_workers`: about half the files/s).
    """

    def __init__(
        self,
        ctx: WorkerContext,
        workers: int = 1,
        *,
        config: Config | None = None,
        analysis: ItemAnalysis = analyse_item,
    ) -> None:
        self.ctx = ctx
        self.idle_s = IDLE_S
        self._queue: queue.Queue[int | None] = queue.Queue()
        count = max(1, workers)
        self.processes: list[AnalysisProcess] = []
        if config is not None:
            self.processes = [
                AnalysisProcess(
                    config, name=f"shingan-analysis-{i}", share_cores=count > 1, analysis=analysis
                )
                for i in range(count)
            ]
        self._free: queue.LifoQueue[AnalysisProcess] = queue.LifoQueue()  # warm ones first
        for worker in self.processes:
            self._free.put(worker)
        self._threads = [
            threading.Thread(target=self._loop, name=f"shingan-job-{i}", daemon=True)
            for i in range(2 * count if self.processes else count)
        ]
        self._queued: set[int] = set()
        self._lock = threading.Lock()
        self._same_file = SameFile()
        self._closing = threading.Event()  # stop(): take no more items
        self._stopping = threading.Event()  # stop(), after the grace: end the analyses

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
        analyse = self._analyse_in_a_process if self.processes else None
        while True:
            try:
                item_id = self._queue.get(timeout=self.idle_s if self.processes else None)
            except queue.Empty:
                self._close_idle_processes()  # their memory goes back until the next item
                continue
            if item_id is None or self._closing.is_set():
                return  # items left in the queue are unfinished rows: resumed at start
            try:
                done = process_item(item_id, self.ctx, analyse, self._same_file)
                if done:
                    self._completed(done)
            except ItemLeft:
                pass
            except Exception:  # the store is unreachable, say; keep the thread alive
                log.exception("batch item %s could not be processed", item_id)
            finally:
                with self._lock:
                    self._queued.discard(item_id)

    def warm(self) -> None:
        """Start the free worker processes that are not running, so that they load while a
        batch's files are stored; those that then get no item end after :data:`IDLE_S`."""
        self._each_free_process(lambda w: None if self._closing.is_set() else w.warm())

    def _close_idle_processes(self) -> None:
        self._each_free_process(lambda w: w.close())

    def _each_free_process(self, act: Callable[[AnalysisProcess], None]) -> None:
        """``act`` on every process no thread holds (taken from the free ones, then put back)."""
        taken = []
        try:
            while True:
                taken.append(self._free.get_nowait())
        except queue.Empty:
            pass
        try:
            for worker in taken:
                act(worker)
        finally:
            for worker in taken:
                self._free.put(worker)

    def _analyse_in_a_process(self, task: ItemTask, path: Path) -> Outcome:
        """The item analysed in a free process; tried once more in a new one if it died.

        Called with the item's :class:`SameFile` lock held; a thread waits for that lock
        holding no process, and for a process holding no lock but its own item's, so the two
        waits cannot close a circle."""
        worker = self._free.get()
        try:
            if self._closing.is_set():
                raise ItemLeft("the runner is stopping")
            for attempt in (1, 2):
                try:
                    return worker.analyse(path, task.filename, task.language, task.actor)
                except WorkerDied as exc:
                    if self._stopping.is_set():
                        raise ItemLeft("the runner stopped") from exc
                    log.warning(
                        "the analysis process of batch item %s (%s) %s (attempt %d)",
                        task.id,
                        task.filename,
                        exc,
                        attempt,
                    )
                    if attempt == 1 and self.ctx.store.batches.claim_item(task.id) is None:
                        raise ItemLeft("finished elsewhere") from exc
                    reason = str(exc)
            return ItemFailure(
                "internal_error",
                f"the analysis process ended before it answered, twice ({reason})",
            )
        finally:
            self._free.put(worker)

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

    def stop(self, grace_s: float = 2.0) -> None:
        """Take no more items and end the worker processes. Items being analysed get
        ``grace_s`` to finish; then their processes are terminated and the items stay
        unfinished, to be resumed at the next start (as after a crash); so do queued items."""
        self._closing.set()
        for _ in self._threads:
            self._queue.put(None)  # wakes the idle threads
        if not self.processes:
            return  # threads end after their current item (as before)
        deadline = time.monotonic() + grace_s
        for t in self._threads:
            if t.is_alive():
                t.join(max(0.0, deadline - time.monotonic()))
        self._stopping.set()
        for worker in self.processes:
            worker.terminate()  # those still busy; their threads leave the items unfinished
        for t in self._threads:
            if t.is_alive():
                t.join(10)
        for worker in self.processes:
            worker.close()


class CeleryRunner:
    """Sends each item to the broker; ``shingan worker`` processes run them."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def start(self) -> None:
        """Nothing to resume: the broker keeps unacknowledged tasks."""

    def warm(self) -> None:
        """Nothing to start: workers run elsewhere."""

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
