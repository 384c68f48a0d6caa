"""Known-media banks and their entries, and the revision that tells every process sharing the
database when its in-memory index is out of date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import delete, func, insert, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.store.db import (
    BankEntryRow,
    BankRow,
    Database,
    MetaRow,
    StoreConflict,
    StoreNotFound,
    aware,
    iso,
    now,
)
from service.store.keys import Viewer


class EntryFields(Protocol):
    """What :meth:`BankRepository.add_bank_entries` reads of an entry (``banks.BankEntry``
    has it)."""

    @property
    def entry(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def pdq(self) -> str: ...
    @property
    def note(self) -> str: ...
    @property
    def source(self) -> str: ...


@dataclass(frozen=True)
class BankEntryRecord:
    id: int
    bank: str
    entry: str
    label: str
    pdq: str
    note: str
    source: str


@dataclass(frozen=True)
class BankRecord:
    """A bank as one viewer sees it."""

    name: str
    label: str
    note: str
    source: str
    created_at: dt.datetime
    entries: int
    shared: bool
    owner: str | None  # None: the operator's
    writable: bool  # whether the viewer may add to or delete the bank

    def to_dict(self) -> dict[str, Any]:
        """The bank's JSON (``/v1/banks``)."""
        return {
            "name": self.name,
            "label": self.label,
            "note": self.note,
            "source": self.source,
            "created_at": iso(self.created_at),
            "entries": self.entries,
            "shared": self.shared,
            "owner": self.owner,
            "writable": self.writable,
        }


def _bump(s: Session, key: str) -> None:
    """Add one to a counter in the database itself (no lost update between processes)."""
    done = s.execute(update(MetaRow).where(MetaRow.key == key).values(value=MetaRow.value + 1))
    if not getattr(done, "rowcount", 0):
        s.add(MetaRow(key=key, value=1))


class BankRepository:
    """The known-media banks of one database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def banks_state(self) -> tuple[int, int]:
        """(revision, epoch): the revision changes with every bank change, the epoch only when
        entries were removed (so cached indexes know whether appending is enough)."""
        with self._db.read() as s:
            rev = s.get(MetaRow, "banks_revision")
            epoch = s.get(MetaRow, "banks_epoch")
            return (rev.value if rev else 0, epoch.value if epoch else 0)

    def create_bank(
        self,
        name: str,
        label: str,
        note: str = "",
        source: str = "",
        *,
        owner: str | None = None,
        shared: bool = True,
    ) -> None:
        """Raises: StoreConflict when a bank of that name exists."""
        try:
            with self._db.write.begin() as s:
                s.add(
                    BankRow(
                        name=name,
                        label=label,
                        note=note,
                        source=source,
                        created_at=now(),
                        owner=owner[:128] if owner else None,
                        shared=shared,
                    )
                )
                _bump(s, "banks_revision")
        except IntegrityError as exc:
            raise StoreConflict(f"a bank named {name!r} exists already") from exc

    def get_bank(self, name: str, viewer: Viewer | None = None) -> BankRecord | None:
        """The bank if it exists and ``viewer`` may see it (shared, theirs, or an admin)."""
        for b in self.list_banks(viewer, name=name):
            return b
        return None

    def list_banks(
        self, viewer: Viewer | None = None, *, name: str | None = None
    ) -> list[BankRecord]:
        """Banks ``viewer`` may see, by name, with their entry counts."""
        with self._db.read() as s:
            q = select(BankRow).order_by(BankRow.name)
            if name is not None:
                q = q.where(BankRow.name == name)
            banks = [
                b for b in s.scalars(q) if viewer is None or b.shared or viewer.may_see(b.owner)
            ]
            counts: dict[str, int] = {}
            if banks:
                counts = dict(
                    s.execute(
                        select(BankEntryRow.bank, func.count())
                        .where(BankEntryRow.bank.in_([b.name for b in banks]))
                        .group_by(BankEntryRow.bank)
                    ).all()
                )
            return [
                BankRecord(
                    name=b.name,
                    label=b.label,
                    note=b.note,
                    source=b.source,
                    created_at=aware(b.created_at),
                    entries=counts.get(b.name, 0),
                    shared=b.shared,
                    owner=b.owner,
                    writable=viewer is None or viewer.may_see(b.owner),
                )
                for b in banks
            ]

    def usable_banks(self, actor: str) -> frozenset[str]:
        """Names of the banks looked up for ``actor``'s verifications: shared ones and its own
        (an admin's too: it sees other keys' banks, but they do not decide its verdicts)."""
        with self._db.read() as s:
            return frozenset(
                s.scalars(
                    select(BankRow.name).where(
                        (BankRow.shared == true()) | (BankRow.owner == actor)
                    )
                )
            )

    def add_bank_entries(self, bank: str, entries: Iterable[EntryFields]) -> int:
        """Add entries to an existing bank (whatever bank they name). Raises StoreNotFound for
        an unknown bank."""
        with self._db.write.begin() as s:
            if s.get(BankRow, bank) is None:
                raise StoreNotFound(f"no bank named {bank!r}")
            n = 0
            t = now()
            rows: list[dict[str, Any]] = []
            for e in entries:
                rows.append(
                    {
                        "bank": bank,
                        "entry": e.entry[:255],
                        "label": e.label,
                        "pdq": e.pdq,
                        "note": e.note,
                        "source": e.source,
                        "created_at": t,
                    }
                )
                if len(rows) >= 10000:  # bulk INSERT of dicts: ORM objects cost far more at 1M rows
                    s.execute(insert(BankEntryRow), rows)
                    n += len(rows)
                    rows = []
            if rows:
                s.execute(insert(BankEntryRow), rows)
                n += len(rows)
            _bump(s, "banks_revision")
            return n

    def delete_bank(self, name: str) -> None:
        """Raises: StoreNotFound."""
        with self._db.write.begin() as s:
            if s.get(BankRow, name) is None:
                raise StoreNotFound(f"no bank named {name!r}")
            s.execute(delete(BankEntryRow).where(BankEntryRow.bank == name))
            s.execute(delete(BankRow).where(BankRow.name == name))
            _bump(s, "banks_revision")
            _bump(s, "banks_epoch")

    def bank_entries(self, bank: str | None = None, after_id: int = 0) -> Iterator[BankEntryRecord]:
        """Entries in id order (one bank, or all), read in pages."""
        last = after_id
        cols = (
            BankEntryRow.id,
            BankEntryRow.bank,
            BankEntryRow.entry,
            BankEntryRow.label,
            BankEntryRow.pdq,
            BankEntryRow.note,
            BankEntryRow.source,
        )
        while True:
            q = select(*cols).where(BankEntryRow.id > last)  # tuples, not ORM objects: faster
            if bank is not None:
                q = q.where(BankEntryRow.bank == bank)
            with self._db.read() as s:
                rows = s.execute(q.order_by(BankEntryRow.id).limit(50000)).all()
            if not rows:
                return
            for r in rows:
                yield BankEntryRecord(*r)
            last = rows[-1][0]
