"""The database under the repositories: tables, migrations, engines and sessions.

Schema changes are Alembic migrations (``service/migrations``), applied when a database opens;
a SQLite database already at the newest one (:data:`SCHEMA_HEAD`) opens without Alembic.

Several processes may share one database (the service and ``shingan worker`` processes). On
SQLite, writes take the write lock when they begin (``BEGIN IMMEDIATE``) and wait for it, and the
journal is in WAL mode so readers never wait for writers.
"""

from __future__ import annotations

import datetime as dt
import fcntl
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
    true,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import NullPool

from provenance.errors import ShinganError
from service.db_url import SCHEMA_HEAD, normalise_url, sqlite_file

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

# Item states (a batch is ``running`` or ``done``). ``running`` items are claimed by a worker; a
# worker that dies leaves them ``running`` and a redelivered task may claim them again.
QUEUED, RUNNING, DONE, ERROR = "queued", "running", "done", "error"
UNFINISHED = (QUEUED, RUNNING)


class Base(DeclarativeBase):
    pass


class ReportRow(Base):
    __tablename__ = "reports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    label: Mapped[str] = mapped_column(String(16), index=True)
    confidence: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    batch_id: Mapped[str | None] = mapped_column(String(32), index=True, nullable=True)
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    body: Mapped[str] = mapped_column(Text)
    # who may read it when keys are in use (the key's actor; NULL: made before owners existed)
    owner: Mapped[str | None] = mapped_column(String(128), index=True, nullable=True)


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    report_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    label: Mapped[str | None] = mapped_column(String(16), nullable=True)
    versions: Mapped[str] = mapped_column(Text)


class BatchRow(Base):
    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)
    total: Mapped[int] = mapped_column(Integer)
    language: Mapped[str] = mapped_column(String(8))
    webhook_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_secret: Mapped[str | None] = mapped_column(String(128), nullable=True)
    webhook_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ItemRow(Base):
    __tablename__ = "batch_items"
    __table_args__ = (UniqueConstraint("batch_id", "position", name="uq_batch_items_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(32), ForeignKey("batches.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    report_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    label: Mapped[str | None] = mapped_column(String(16), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class BankRow(Base):
    __tablename__ = "banks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    source: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)  # NULL: the operator
    # shared banks are looked up for every caller and read-only to all but owner and admins
    shared: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class BankEntryRow(Base):
    __tablename__ = "bank_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bank: Mapped[str] = mapped_column(String(64), ForeignKey("banks.name"), index=True)
    entry: Mapped[str] = mapped_column(String(255))
    label: Mapped[str] = mapped_column(String(16))
    pdq: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    source: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    rate_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # service.store.keys.USER; service.store.keys.ADMIN manages every bank, reads every report
    role: Mapped[str] = mapped_column(String(16), default="user", server_default="user")


class MediaHoldRow(Base):
    """A file in the media store that an intake still in progress needs (see
    :meth:`service.store.holds.HoldRepository.hold_media`)."""

    __tablename__ = "media_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    holder: Mapped[str] = mapped_column(String(128), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class MetaRow(Base):
    __tablename__ = "store_meta"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class StoreConflict(ShinganError):
    """The thing being created exists already."""

    code = "conflict"


class StoreNotFound(ShinganError):
    """The thing named does not exist."""

    code = "not_found"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def aware(t: dt.datetime) -> dt.datetime:
    """A time read back from the database, in UTC when it has no zone: SQLite hands back naive
    datetimes, which the store wrote in UTC."""
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def iso(t: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands back naive datetimes, which the store wrote in UTC."""
    if t is None:
        return None
    return aware(t).isoformat()


_MIGRATION_LOCK = 0x5368696E67616E  # "Shingan", the advisory lock id for migrations


def _at_head(url: str, engine: Engine) -> bool:
    """Whether an existing SQLite file is stamped with :data:`SCHEMA_HEAD`: one read of the
    ``alembic_version`` row, so that opening a current database (every ``shingan`` command that
    finds one) does not import and run Alembic to learn that there is nothing to do. A missing
    file, another database, an older or newer schema, or any error reading the row: False, and
    :func:`migrate` decides as it always did."""
    path = sqlite_file(url)
    if path is None or not path.is_file():
        return False
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:
        return False
    return rows == [SCHEMA_HEAD]


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the latest schema.

    On a SQLite file, processes starting together (the service and its workers) take turns
    through a lock file, so two of them never create the same table.
    """
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    db = sqlite_file(url)
    if db is None:
        if url.startswith("postgresql"):
            # Processes starting together take turns through a session-level advisory lock.
            engine = create_engine(url, poolclass=NullPool)
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
                    try:
                        command.upgrade(cfg, "head")
                    finally:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
            finally:
                engine.dispose()
        else:
            command.upgrade(cfg, "head")
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".migrate-lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            command.upgrade(cfg, "head")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _engines(url: str) -> tuple[Engine, Engine]:
    """(reader, writer). On SQLite the writer begins every transaction with BEGIN IMMEDIATE."""
    if sqlite_file(url) is None and not url.startswith("sqlite"):
        engine = create_engine(url, future=True, pool_pre_ping=True)
        return engine, engine

    def make(immediate: bool) -> Engine:
        engine = create_engine(url, future=True, connect_args={"timeout": 60})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    return make(False), make(True)


class Database:
    """One database, opened (and migrated) at ``url``: ``read()`` opens a session for reading,
    ``write.begin()`` a transaction that holds the write lock from its start (on SQLite)."""

    def __init__(self, url: str) -> None:
        url = normalise_url(url)
        self.url = url
        self.engine, self.writer = _engines(url)
        if not _at_head(url, self.engine):
            migrate(url)
        self.read: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)
        self.write: sessionmaker[Session] = sessionmaker(self.writer, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()
        self.writer.dispose()
