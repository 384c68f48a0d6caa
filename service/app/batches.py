"""Batches: many files (or zips of them) stored, recorded and queued for the workers; their
progress and results. Called by ``/v1/batches`` and the ``/batch`` page."""

from __future__ import annotations

import csv
import io
import json
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance.media import MediaTooLarge
from service import webhooks
from service.app.errors import BadRequest, NotFound, Refused, TooLarge
from service.archive import ArchiveError, MemberUnreadable, is_zip, iter_members, open_member
from service.batch import CSV_FIELDS, Failure, csv_row, error_row, row_of
from service.jobs import CeleryRunner, InProcessRunner
from service.media_store import MediaStore, new_holder
from service.store import BatchRecord, NewItem, Store


class _Budget:
    """The bytes a batch may still hold: its files in all, zips counted expanded."""

    def __init__(self, limit: int) -> None:
        self.limit, self.left = limit, limit

    def take(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise TooLarge(f"the batch holds over {self.limit} bytes (zips expanded)")


@dataclass(frozen=True)
class Started:
    """A batch just recorded, and the webhook secret made for its caller (shown only now)."""

    batch: BatchRecord
    webhook_secret: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The batch's JSON, with ``webhook_secret`` when one was made."""
        out = self.batch.to_dict()
        if self.webhook_secret:
            out["webhook_secret"] = self.webhook_secret  # the caller verifies signatures with it
        return out


@dataclass(frozen=True)
class Batches:
    """Batches of one store and media folder, queued on ``runner``."""

    store: Store
    media: MediaStore
    runner: InProcessRunner | CeleryRunner
    upload_dir: Path
    max_file_bytes: int
    max_files: int
    max_batch_bytes: int
    max_zip_ratio: float
    webhook_allowed_hosts: tuple[str, ...] = ()
    owners_only: bool = False  # with keys in use, only a batch's creator may see it

    @property
    def archive_limits(self) -> dict[str, Any]:
        return {
            "max_members": self.max_files,
            "max_total_bytes": self.max_batch_bytes,
            "max_ratio": self.max_zip_ratio,
        }

    def collect_items(self, files: list[tuple[str, Any]], holder: str) -> list[NewItem]:
        """Store every uploaded file (expanding zip archives) in the media store, each held for
        this intake (``holder``) until its batch is created.

        Raises:
            Refused: a refused archive (its code), more files or more bytes than a batch may hold.
        """
        max_bytes = self.max_file_bytes
        limits = self.archive_limits
        budget = _Budget(limits["max_total_bytes"])
        items: list[NewItem] = []

        def hold(sha: str) -> None:
            self.store.holds.hold_media(holder, sha)

        def add(name: str, stream: Any) -> None:
            if len(items) >= limits["max_members"]:
                raise BadRequest(
                    f"a batch holds at most {limits['max_members']} files", code="too_many_files"
                )
            try:
                sha, size = self.media.put_stream(stream, min(max_bytes, budget.left), hold)
            except MediaTooLarge as exc:
                if budget.left < max_bytes:
                    budget.take(budget.left + 1)  # the batch, not the file, is over its limit
                items.append(NewItem(name, "", 0, (exc.code, exc.message)))
            else:
                budget.take(size)
                if size == 0:
                    items.append(NewItem(name, sha, 0, ("empty_media", "the file is empty")))
                else:
                    items.append(NewItem(name, sha, size))

        for name, stream in files:
            with tempfile.NamedTemporaryFile(dir=self.upload_dir, prefix="batch-") as tmp:
                total = 0
                while chunk := stream.read(1024 * 1024):
                    total += len(chunk)
                    if total > budget.left:
                        raise TooLarge("the batch is over its size limit")
                    tmp.write(chunk)
                tmp.flush()
                path = Path(tmp.name)
                if not is_zip(path):
                    with path.open("rb") as fh:
                        add(name, fh)
                    continue
                try:
                    checks = {**limits, "max_total_bytes": budget.left}
                    for member, zf in iter_members(path, **checks):
                        label = f"{name}/{member.name}"[:255]
                        try:
                            add(label, open_member(zf, member))
                        except ArchiveError:
                            raise
                        except MemberUnreadable as exc:
                            items.append(
                                NewItem(label, "", 0, ("unreadable", f"cannot unpack: {exc}"))
                            )
                except ArchiveError as exc:
                    raise Refused(f"{name}: {exc.message}", code=exc.code) from exc
        return items

    def start(
        self,
        files: list[tuple[str, Any]],
        *,
        language: str,
        caller: str,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> Started:
        """Store the files, record the batch, queue its items; returns the batch status (with
        the webhook secret when one was made for the caller: shown once).

        A batch refused half-way (a zip bomb after other files were stored, a size limit) leaves
        nothing behind: the intake's holds are dropped and its files released.

        Raises:
            Refused: a bad webhook URL (``bad_webhook``), no files (``missing_file``), or as
                :meth:`collect_items`.
        """
        made_secret = None
        if webhook_url:
            try:
                webhooks.check_url(webhook_url, self.webhook_allowed_hosts)
            except webhooks.WebhookRefused as exc:
                raise BadRequest(str(exc), code="bad_webhook") from exc
            if not webhook_secret:
                webhook_secret = made_secret = secrets.token_urlsafe(32)
        else:
            webhook_url = webhook_secret = None
        holder = new_holder()
        self.runner.warm()  # worker processes load while the files are stored
        try:
            items = self.collect_items(files, holder)
            if not items:
                raise BadRequest("the batch holds no files", code="missing_file")
            batch_id = secrets.token_hex(16)
            queued = self.store.batches.create_batch(
                batch_id,
                items,
                actor=caller,
                language=language,
                webhook_url=webhook_url,
                webhook_secret=webhook_secret,
                holder=holder,
            )
        except BaseException:
            for sha in self.store.holds.drop_holds(holder):
                self.media.release(sha, self.store.holds)
            raise
        for sha in {it.sha256 for it in items if it.error and it.sha256}:
            # refused on arrival (empty): no item reads it
            self.media.release(sha, self.store.holds)
        self.store.reports.audit_event(caller, "batch_created", f"{batch_id}: {len(items)} files")
        self.runner.submit(queued)
        if not queued:
            self.store.batches.complete_batch_if_done(batch_id)
        batch = self.store.batches.get_batch(batch_id)
        assert batch is not None  # just recorded; batches are never deleted
        return Started(batch, made_secret)

    def owned(self, batch_id: str, caller: str) -> BatchRecord:
        """The batch, if the caller may see it.

        Raises:
            NotFound: no such batch, or another caller's (with keys in use).
        """
        batch = self.store.batches.get_batch(batch_id) if len(batch_id) <= 64 else None
        if batch is None or (self.owners_only and batch.actor != caller):
            raise NotFound("no batch with that id")
        return batch

    def result_lines(self, batch_id: str, kind: str) -> Iterator[str]:
        """CSV or JSON Lines, in the same shapes as ``shingan batch``, one item at a time."""
        if kind == "csv":
            buf = io.StringIO()
            writer = csv.writer(buf)
            writer.writerow(CSV_FIELDS)
            yield buf.getvalue()
        for item, report in self.store.batches.batch_results(batch_id):
            name = Path(item.filename)
            if kind == "csv":
                buf = io.StringIO()
                writer = csv.writer(buf)
                if report is not None:
                    row = row_of(name, report)
                elif item.status == "error":
                    code, message = (
                        (item.error.code, item.error.message) if item.error else ("", "")
                    )
                    row = error_row(name, Failure(item.sha256, code or "", message or ""))
                else:
                    row = error_row(
                        name,
                        Failure(item.sha256, "pending", f"not analysed yet ({item.status})"),
                    )
                writer.writerow(csv_row(row))
                yield buf.getvalue()
            else:
                if report is not None:
                    line: dict[str, Any] = {"path": str(name), **report}
                else:
                    err = (
                        item.error.to_dict()
                        if item.error is not None
                        else {"code": "pending", "message": f"not analysed yet ({item.status})"}
                    )
                    line = {"path": str(name), "sha256": item.sha256, "error": err}
                yield json.dumps(line, ensure_ascii=False) + "\n"
