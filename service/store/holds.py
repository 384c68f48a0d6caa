"""What the database says about files in the media store: which ones unfinished batch items or
intakes in progress (*holds*) still need, decided in the transaction that deletes one (see
:mod:`service.media_store`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from service.store.db import UNFINISHED, Database, ItemRow, MediaHoldRow, aware, now

#: An intake that died without dropping its holds loses them after this long at most.
HOLD_TTL_S = 6 * 3600


def lock_media(s: Session, sha256: str) -> None:
    """Serialise what changes whether one file is needed: holds, releases, and a batch taking
    over an intake's holds. SQLite writers are serialised already (BEGIN IMMEDIATE);
    PostgreSQL takes a transaction-scoped advisory lock."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": int(sha256[:15], 16)})


class HoldRepository:
    """Media holds of one database, and the decisions that read them with the batch items."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _lock_media(self, s: Session, sha256: str) -> None:
        lock_media(s, sha256)

    def _needed(self, s: Session, sha256: str) -> bool:
        """One statement, so one snapshot: read as two, a batch created between them (its hold
        gone, its item not yet seen) would look as if nothing needed the file."""
        items = (
            select(func.count())
            .select_from(ItemRow)
            .where(ItemRow.sha256 == sha256, ItemRow.status.in_(UNFINISHED))
            .scalar_subquery()
        )
        holds = (
            select(func.count())
            .select_from(MediaHoldRow)
            .where(MediaHoldRow.sha256 == sha256, MediaHoldRow.expires_at > now())
            .scalar_subquery()
        )
        return bool(s.scalar(select(items + holds)))

    def hold_media(self, holder: str, sha256: str, ttl_s: float = HOLD_TTL_S) -> None:
        """Record that an intake needs this file; call it before the file is put in place, so a
        worker finishing another item with the same content cannot delete it in between."""
        with self._db.write.begin() as s:
            self._lock_media(s, sha256)
            s.add(
                MediaHoldRow(
                    holder=holder[:128],
                    sha256=sha256,
                    expires_at=now() + dt.timedelta(seconds=ttl_s),
                )
            )

    def drop_holds(self, holder: str) -> list[str]:
        """Forget an intake's holds (it failed; when its batch is created they are dropped with
        :meth:`service.store.batches.BatchRepository.create_batch`); returns the files it held."""
        with self._db.write.begin() as s:
            shas = list(s.scalars(select(MediaHoldRow.sha256).where(MediaHoldRow.holder == holder)))
            s.execute(delete(MediaHoldRow).where(MediaHoldRow.holder == holder))
            return list(dict.fromkeys(shas))

    def drop_stale_holds(self, stale: Callable[[str], bool]) -> int:
        """Forget expired holds and those whose holder ``stale`` says is gone (a process that
        was killed during an intake); returns how many."""
        with self._db.write.begin() as s:
            rows = s.execute(select(MediaHoldRow.id, MediaHoldRow.holder, MediaHoldRow.expires_at))
            t = now()
            gone = [i for i, holder, expires in rows if aware(expires) <= t or stale(holder)]
            if gone:
                s.execute(delete(MediaHoldRow).where(MediaHoldRow.id.in_(gone)))
            return len(gone)

    def release_media(self, sha256: str, delete_file: Callable[[], None]) -> bool:
        """Delete a file (``delete_file``) unless an unfinished item or a live hold needs it,
        deciding and deleting in one transaction. Returns whether it was deleted."""
        with self._db.write.begin() as s:
            self._lock_media(s, sha256)
            if self._needed(s, sha256):
                return False
            delete_file()
            return True

    def needed_shas(self) -> set[str]:
        """Every file that unfinished items or live holds need."""
        with self._db.read() as s:
            items = s.scalars(
                select(ItemRow.sha256).where(ItemRow.status.in_(UNFINISHED)).distinct()
            )
            holds = s.scalars(
                select(MediaHoldRow.sha256).where(MediaHoldRow.expires_at > now()).distinct()
            )
            return set(items) | set(holds)
