"""The banks of the data folder's SQLite database, read with the standard library's ``sqlite3``.

A one-off ``shingan verify`` reads the banks and writes nothing; the database layer
(:mod:`service.store`: SQLAlchemy, about 0.25 s to import) would be most of its start-up. So
when the database is a SQLite file stamped with the newest schema (:data:`SCHEMA_HEAD`), the
CLI reads its banks through :class:`SqliteBanks`: the same three reads as
:class:`service.store.BankRepository` (``tests/test_banks_db.py`` checks they agree), over a
read-only connection. Anything else (an older or newer schema, PostgreSQL, a file that is not
a database) goes through the database layer as before, which also migrates.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from service.db_url import SCHEMA_HEAD, sqlite_file

if TYPE_CHECKING:
    from service.banks import BankSource
    from service.config import Config

_PAGE = 50_000


class BankEntryRow(NamedTuple):
    """The fields of ``service.store.BankEntryRecord`` that ``banks.BankEntry.of`` reads."""

    id: int
    bank: str
    entry: str
    label: str
    pdq: str
    note: str
    source: str


class SqliteBanks:
    """Read-only bank access to a SQLite file (a ``banks.BankSource``)."""

    def __init__(self, path: Path) -> None:
        self._uri = path.resolve().as_uri() + "?mode=ro"
        self._lock = threading.Lock()  # one connection, used by one thread at a time
        self._db = sqlite3.connect(self._uri, uri=True, check_same_thread=False)

    @classmethod
    def open_current(cls, path: Path | None) -> SqliteBanks | None:
        """The reader for ``path`` if it is a SQLite database at :data:`SCHEMA_HEAD`, else
        None (the caller opens the database layer, which decides what to do)."""
        if path is None or not path.is_file():
            return None
        try:
            banks = cls(path)
        except (sqlite3.Error, OSError, ValueError):
            return None
        try:
            with banks._lock:
                rows = banks._db.execute("SELECT version_num FROM alembic_version").fetchall()
        except sqlite3.Error:
            rows = []
        if rows != [(SCHEMA_HEAD,)]:
            banks.close()
            return None
        return banks

    def close(self) -> None:
        self._db.close()

    def banks_state(self) -> tuple[int, int]:
        """(revision, epoch), as ``BankRepository.banks_state``."""
        with self._lock:
            found = dict(
                self._db.execute(
                    "SELECT key, value FROM store_meta WHERE key IN "
                    "('banks_revision', 'banks_epoch')"
                ).fetchall()
            )
        return int(found.get("banks_revision", 0)), int(found.get("banks_epoch", 0))

    def bank_entries(self, bank: str | None = None, after_id: int = 0) -> Iterator[BankEntryRow]:
        """Entries in id order (one bank, or all), read in pages."""
        last = after_id
        query = "SELECT id, bank, entry, label, pdq, note, source FROM bank_entries WHERE id > ?"
        if bank is not None:
            query += " AND bank = ?"
        query += f" ORDER BY id LIMIT {_PAGE}"
        while True:
            args: tuple[object, ...] = (last,) if bank is None else (last, bank)
            with self._lock, closing(self._db.execute(query, args)) as cursor:
                rows = [BankEntryRow(*r) for r in cursor.fetchall()]
            if not rows:
                return
            yield from rows
            last = rows[-1].id

    def usable_banks(self, actor: str) -> frozenset[str]:
        """Shared banks and ``actor``'s own, as ``BankRepository.usable_banks``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name FROM banks WHERE shared = 1 OR owner = ?", (actor,)
            ).fetchall()
        return frozenset(name for (name,) in rows)


def holds_no_banks(path: Path | None) -> bool:
    """Whether the SQLite file at ``path`` certainly holds no bank entry (whatever its schema):
    then a one-off command needs neither the database nor its layer. Anything unexpected
    (another database, a file that does not read as one) says no."""
    if path is None or not path.is_file():
        return False
    try:
        uri = path.resolve().as_uri() + "?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as db:
            (found,) = db.execute("SELECT EXISTS (SELECT 1 FROM bank_entries)").fetchone()
    except (sqlite3.Error, OSError, ValueError):
        return False
    return bool(found == 0)


def database_banks(config: Config, *, one_off: bool = False) -> BankSource | None:
    """The banks kept in ``config``'s database, for a process that only reads them (``shingan
    verify``, the batch workers): None when there is no database; a current SQLite file read
    with :class:`SqliteBanks`; anything else through the database layer (which migrates an
    older schema). Both stay current as entries are added. ``one_off`` (a single
    verification): also None when the database holds no entry.

    Raises:
        Exception: whatever opening the database through its layer raised.
    """
    path = sqlite_file(config.store_url)
    if one_off and holds_no_banks(path):
        return None
    reader = SqliteBanks.open_current(path)
    if reader is not None:
        return reader
    store = config.existing_store()
    return store.banks if store is not None else None
