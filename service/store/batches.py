"""Batches and their items: recorded with their queued items, claimed and finished by workers
(each item keeps exactly one result), their webhook's state, and the queue's depth."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update

from service.store.db import (
    DONE,
    ERROR,
    QUEUED,
    RUNNING,
    UNFINISHED,
    BatchRow,
    Database,
    ItemRow,
    MediaHoldRow,
    ReportRow,
    aware,
    iso,
    now,
)
from service.store.holds import lock_media
from service.store.reports import add_report
from service.webhooks import display_url


@dataclass(frozen=True)
class NewItem:
    filename: str
    sha256: str
    bytes: int
    error: tuple[str, str] | None = None  # refused on arrival (code, message)


@dataclass(frozen=True)
class ItemTask:
    """What a worker needs to analyse one claimed batch item."""

    id: int
    batch_id: str
    position: int
    filename: str
    sha256: str
    language: str
    actor: str
    attempts: int


@dataclass(frozen=True)
class ItemError:
    """Why an item has no report (the columns allow neither to be missing, but do not insist)."""

    code: str | None
    message: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class ItemRecord:
    """One item of a batch, as the API shows it."""

    position: int
    filename: str
    sha256: str
    bytes: int
    status: str  # queued, running, done or error
    attempts: int
    label: str | None
    report_id: str | None
    error: ItemError | None  # set exactly when the status is ``error``
    finished_at: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        """The item's JSON (``items`` of ``GET /v1/batches/<id>``)."""
        return {
            "position": self.position,
            "filename": self.filename,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "status": self.status,
            "attempts": self.attempts,
            "label": self.label,
            "report_id": self.report_id,
            "error": self.error.to_dict() if self.error is not None else None,
            "finished_at": iso(self.finished_at),
        }


@dataclass(frozen=True)
class WebhookStatus:
    url: str | None  # as shown: without query string or fragment (webhooks.display_url)
    state: str | None  # pending, retrying, delivered, failed or refused
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "state": self.state, "attempts": self.attempts}


@dataclass(frozen=True)
class BatchRecord:
    """A batch's status and counts (without its items)."""

    id: str
    status: str  # running or done
    actor: str
    created_at: dt.datetime
    finished_at: dt.datetime | None
    total: int
    counts: dict[str, int]  # items by state: queued, running, done, error (in that order)
    labels: dict[str, int]  # finished items by label, in label order
    language: str
    webhook: WebhookStatus | None

    @property
    def progress(self) -> float:
        """The share of items finished (done or error), rounded to 4 places."""
        finished = self.counts[DONE] + self.counts[ERROR]
        return round(finished / self.total, 4) if self.total else 1.0

    def to_dict(self) -> dict[str, Any]:
        """The batch's JSON (a new dict each time: callers add to it or drop from it)."""
        return {
            "id": self.id,
            "status": self.status,
            "actor": self.actor,
            "created_at": iso(self.created_at),
            "finished_at": iso(self.finished_at),
            "total": self.total,
            "counts": dict(self.counts),
            "progress": self.progress,
            "labels": dict(self.labels),
            "language": self.language,
            "webhook": self.webhook.to_dict() if self.webhook is not None else None,
        }


class BatchRepository:
    """The batches and batch items of one database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create_batch(
        self,
        batch_id: str,
        items: list[NewItem],
        *,
        actor: str,
        language: str = "en",
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        holder: str | None = None,
    ) -> list[int]:
        """Record a batch and its items; returns the ids of the queued ones, in order (items
        refused on arrival are recorded with their error). The intake's media holds
        (``holder``, see :class:`service.store.holds.HoldRepository`) are dropped in the same
        transaction: from then on the items need them."""
        with self._db.write.begin() as s:
            if holder is not None:
                # The holds become items atomically for any release deciding on these files.
                held = s.scalars(select(MediaHoldRow.sha256).where(MediaHoldRow.holder == holder))
                for sha in sorted(set(held)):  # one order everywhere: no deadlock
                    lock_media(s, sha)
                s.execute(delete(MediaHoldRow).where(MediaHoldRow.holder == holder))
            s.add(
                BatchRow(
                    id=batch_id,
                    created_at=now(),
                    status=RUNNING if items else DONE,
                    finished_at=None if items else now(),
                    actor=actor[:128],
                    total=len(items),
                    language=language,
                    webhook_url=webhook_url,
                    webhook_secret=webhook_secret,
                    webhook_state="pending" if webhook_url else None,
                    webhook_attempts=0,
                )
            )
            rows = [
                ItemRow(
                    batch_id=batch_id,
                    position=i,
                    filename=it.filename[:255],
                    sha256=it.sha256,
                    bytes=it.bytes,
                    status=ERROR if it.error else QUEUED,
                    attempts=0,
                    error_code=it.error[0][:32] if it.error else None,
                    error=it.error[1][:2000] if it.error else None,
                    finished_at=now() if it.error else None,
                )
                for i, it in enumerate(items)
            ]
            s.add_all(rows)
            s.flush()
            return [r.id for r in rows if r.status == QUEUED]

    def claim_item(self, item_id: int) -> ItemTask | None:
        """Mark an unfinished item running and return it; None when it already has its result.

        A ``running`` item can be claimed again: that is how the work of a worker that died is
        taken over. Two claims of one item can then both analyse it; :meth:`finish_item` keeps
        exactly one result.
        """
        with self._db.write.begin() as s:
            # One conditional UPDATE, so concurrent claims (PostgreSQL) each count an attempt.
            claimed = s.execute(
                update(ItemRow)
                .where(ItemRow.id == item_id, ItemRow.status.in_(UNFINISHED))
                .values(status=RUNNING, attempts=ItemRow.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            item = s.get(ItemRow, item_id, populate_existing=True)
            assert item is not None
            batch = s.get(BatchRow, item.batch_id)
            assert batch is not None
            return ItemTask(
                id=item.id,
                batch_id=item.batch_id,
                position=item.position,
                filename=item.filename,
                sha256=item.sha256,
                language=batch.language,
                actor=batch.actor,
                attempts=item.attempts,
            )

    def done_report_for(self, batch_id: str, sha256: str) -> tuple[str, str] | None:
        """(report id, label) of a finished item of this batch with the same content."""
        with self._db.read() as s:
            row = s.execute(
                select(ItemRow.report_id, ItemRow.label)
                .where(ItemRow.batch_id == batch_id, ItemRow.sha256 == sha256)
                .where(ItemRow.status == DONE, ItemRow.report_id.is_not(None))
                .limit(1)
            ).first()
            return (str(row[0]), str(row[1] or "")) if row else None

    def finish_item(
        self,
        item_id: int,
        *,
        report: dict[str, Any] | None = None,
        reuse: tuple[str, str] | None = None,
        error: tuple[str, str] | None = None,
    ) -> bool:
        """Record an item's one result: a new report (kept with its audit row, in the same
        transaction), a report reused from an identical file of the same batch, or an error
        (code, message). Returns False, recording nothing, when the item already has a result
        (another worker finished it first)."""
        with self._db.write.begin() as s:
            values: dict[str, Any] = {"finished_at": now()}
            if report is not None:
                values |= {
                    "status": DONE,
                    "report_id": report["id"],
                    "label": report["verdict"]["label"],
                }
            elif reuse is not None:
                values |= {"status": DONE, "report_id": reuse[0], "label": reuse[1]}
            else:
                code, message = error or ("unknown", "no result")
                values |= {"status": ERROR, "error_code": code[:32], "error": message[:2000]}
            result = s.execute(
                update(ItemRow)
                .where(ItemRow.id == item_id, ItemRow.status.in_(UNFINISHED))
                .values(**values)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return False
            if report is not None:
                batch_id = s.scalar(select(ItemRow.batch_id).where(ItemRow.id == item_id))
                actor = s.scalar(select(BatchRow.actor).where(BatchRow.id == batch_id)) or ""
                add_report(s, report, actor, batch_id)
            return True

    def complete_batch_if_done(self, batch_id: str) -> bool:
        """Mark the batch done when no item is unfinished. True only for the one caller that
        made the change (so the webhook is sent once).

        Called after every item: while items are left, a read says so without taking the write
        lock. The caller of the last result reads after its own commit, so it sees none left,
        and the write transaction decides again."""
        left = (
            select(func.count())
            .select_from(ItemRow)
            .where(ItemRow.batch_id == batch_id, ItemRow.status.in_(UNFINISHED))
        )
        with self._db.read() as s:
            if s.scalar(left):
                return False
        with self._db.write.begin() as s:
            if s.scalar(left):
                return False
            result = s.execute(
                update(BatchRow)
                .where(BatchRow.id == batch_id, BatchRow.status == RUNNING)
                .values(status=DONE, finished_at=now())
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def unfinished_items(self) -> list[int]:
        """Items still to do, oldest first (resumed when the service starts)."""
        with self._db.read() as s:
            return list(
                s.scalars(
                    select(ItemRow.id).where(ItemRow.status.in_(UNFINISHED)).order_by(ItemRow.id)
                )
            )

    def unfinished_batches(self) -> list[str]:
        with self._db.read() as s:
            return list(s.scalars(select(BatchRow.id).where(BatchRow.status == RUNNING)))

    def undelivered_webhooks(self) -> list[str]:
        """Done batches whose webhook was not delivered yet (retried when the service starts)."""
        with self._db.read() as s:
            return list(
                s.scalars(
                    select(BatchRow.id).where(
                        BatchRow.status == DONE, BatchRow.webhook_state.in_(("pending", "retrying"))
                    )
                )
            )

    def queue_depth(self) -> int:
        with self._db.read() as s:
            return int(
                s.scalar(
                    select(func.count()).select_from(ItemRow).where(ItemRow.status.in_(UNFINISHED))
                )
                or 0
            )

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        """Status and counts of a batch (without its items)."""
        with self._db.read() as s:
            b = s.get(BatchRow, batch_id)
            if b is None:
                return None
            counts: Counter[str] = Counter()
            labels: Counter[str] = Counter()
            for status, label, n in s.execute(
                select(ItemRow.status, ItemRow.label, func.count())
                .where(ItemRow.batch_id == batch_id)
                .group_by(ItemRow.status, ItemRow.label)
            ):
                counts[status] += n
                if label:
                    labels[label] += n
            return BatchRecord(
                id=b.id,
                status=b.status,
                actor=b.actor,
                created_at=aware(b.created_at),
                finished_at=aware(b.finished_at) if b.finished_at is not None else None,
                total=b.total,
                counts={k: counts[k] for k in (QUEUED, RUNNING, DONE, ERROR)},
                labels=dict(sorted(labels.items())),
                language=b.language,
                webhook=(
                    WebhookStatus(display_url(b.webhook_url), b.webhook_state, b.webhook_attempts)
                    if b.webhook_url
                    else None
                ),
            )

    def webhook_target(self, batch_id: str) -> tuple[str, str] | None:
        """(URL, secret) of the batch's webhook, if it has one."""
        with self._db.read() as s:
            b = s.get(BatchRow, batch_id)
            if b is None or not b.webhook_url:
                return None
            return b.webhook_url, b.webhook_secret or ""

    def set_webhook_state(self, batch_id: str, state: str, attempts: int) -> None:
        with self._db.write.begin() as s:
            s.execute(
                update(BatchRow)
                .where(BatchRow.id == batch_id)
                .values(webhook_state=state, webhook_attempts=attempts)
            )

    def batch_items(self, batch_id: str, offset: int = 0, limit: int = 1000) -> list[ItemRecord]:
        """A page of the batch's items, in order."""
        with self._db.read() as s:
            rows = s.scalars(
                select(ItemRow)
                .where(ItemRow.batch_id == batch_id)
                .order_by(ItemRow.position)
                .offset(offset)
                .limit(limit)
            ).all()
            return [_item(r) for r in rows]

    def batch_results(self, batch_id: str) -> Iterator[tuple[ItemRecord, dict[str, Any] | None]]:
        """(item, report or None) for every item in order, read in pages so a batch of
        thousands is never held in memory at once."""
        last = -1
        while True:
            with self._db.read() as s:
                rows = s.execute(
                    select(ItemRow, ReportRow.body)
                    .outerjoin(ReportRow, ReportRow.id == ItemRow.report_id)
                    .where(ItemRow.batch_id == batch_id, ItemRow.position > last)
                    .order_by(ItemRow.position)
                    .limit(200)
                ).all()
            if not rows:
                return
            for item, body in rows:
                yield _item(item), (json.loads(body) if body else None)
            last = rows[-1][0].position


def _item(r: ItemRow) -> ItemRecord:
    return ItemRecord(
        position=r.position,
        filename=r.filename,
        sha256=r.sha256,
        bytes=r.bytes,
        status=r.status,
        attempts=r.attempts,
        label=r.label,
        report_id=r.report_id,
        error=ItemError(r.error_code, r.error) if r.status == ERROR else None,
        finished_at=aware(r.finished_at) if r.finished_at is not None else None,
    )
