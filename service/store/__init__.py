"""Storage: SQLAlchemy over a SQLite file by default, PostgreSQL by URL.

Kept here: reports (their full JSON plus indexed fields), batches and their items, known-media
banks and their entries, API keys (hashed), and an append-only audit log (who asked, when, the
file's sha256, the verdict and the software and model versions that produced it). Media bytes
are not kept here (see :mod:`service.media_store`). The store exposes no update or delete for the
audit log. Schema changes are Alembic migrations (``service/migrations``), applied when the store
opens.

Several processes may share one database (the service and ``shingan worker`` processes). On
SQLite, writes take the write lock when they begin (``BEGIN IMMEDIATE``) and wait for it, and the
journal is in WAL mode so readers never wait for writers.

One narrow repository per kind of thing, each over the one :class:`~service.store.db.Database`
and returning typed, frozen records:

- ``store.reports`` (:mod:`service.store.reports`): reports and the audit log;
- ``store.batches`` (:mod:`service.store.batches`): batches, their items, webhook state, queue;
- ``store.holds`` (:mod:`service.store.holds`): which media files items and intakes still need;
- ``store.banks`` (:mod:`service.store.banks`): known-media banks and their entries;
- ``store.keys`` (:mod:`service.store.keys`): API keys.

The tables, migrations and sessions are in :mod:`service.store.db`. A repository's modules import
their siblings, never this package.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from service.db_url import default_url, normalise_url
from service.store.banks import BankEntryRecord, BankRecord, BankRepository, EntryFields
from service.store.batches import (
    BatchRecord,
    BatchRepository,
    ItemError,
    ItemRecord,
    ItemTask,
    NewItem,
    WebhookStatus,
)
from service.store.db import Database, StoreConflict, StoreNotFound
from service.store.holds import HOLD_TTL_S, HoldRepository
from service.store.keys import ADMIN, ROLES, USER, ApiKey, KeyRepository, Viewer, hash_key
from service.store.reports import AuditEvent, ReportRepository

__all__ = [
    "ADMIN",
    "HOLD_TTL_S",
    "ROLES",
    "USER",
    "ApiKey",
    "AuditEvent",
    "BankEntryRecord",
    "BankRecord",
    "BankRepository",
    "BatchRecord",
    "BatchRepository",
    "Database",
    "EntryFields",
    "HoldRepository",
    "ItemError",
    "ItemRecord",
    "ItemTask",
    "KeyRepository",
    "NewItem",
    "ReportRepository",
    "Store",
    "StoreConflict",
    "StoreNotFound",
    "Viewer",
    "WebhookStatus",
    "default_url",
    "hash_key",
    "normalise_url",
    "opened",
]


class Store:
    """One database (opened and migrated at ``url``) and its repositories."""

    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.url = self.db.url
        self.reports = ReportRepository(self.db)
        self.batches = BatchRepository(self.db)
        self.holds = HoldRepository(self.db)
        self.banks = BankRepository(self.db)
        self.keys = KeyRepository(self.db)

    def close(self) -> None:
        self.db.close()


@contextlib.contextmanager
def opened(url: str) -> Iterator[Store]:
    store = Store(url)
    try:
        yield store
    finally:
        store.close()
