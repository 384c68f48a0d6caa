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
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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
    delete,
    event,
    func,
    insert,
    select,
    text,
    true,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import NullPool

from provenance.errors import ShinganError
from service.webhooks import display_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Item states. ``running`` items are claimed by a worker; a worker that dies leaves them
# ``running`` and a redelivered task may claim them again.
QUEUED, RUNNING, DONE, ERROR = "queued", "running", "done", "error"
UNFINISHED = (QUEUED, RUNNING)

# API key roles: an admin key manages every bank and reads every report.
USER, ADMIN = "user", "admin"
ROLES = (USER, ADMIN)

#: An intake that died without dropping its holds loses them after this long at most.
HOLD_TTL_S = 6 * 3600


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
    role: Mapped[str] = mapped_column(String(16), default=USER, server_default=USER)


class MediaHoldRow(Base):
    """A file in the media store that an intake still in progress needs (see
    :meth:`Store.hold_media`)."""

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


class EntryFields(Protocol):
    """What :meth:`Store.add_bank_entries` reads of an entry (``banks.BankEntry`` has it)."""

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
class ApiKey:
    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    rate_per_minute: int | None
    role: str = USER

    @property
    def admin(self) -> bool:
        return self.role == ADMIN


@dataclass(frozen=True)
class Viewer:
    """Who is asking, for ownership checks: an actor (``key:<name>``) and whether it is an
    admin. ``None`` in place of a viewer means no checks (keys are not in use, or the CLI)."""

    actor: str
    admin: bool = False

    def may_see(self, owner: str | None) -> bool:
        return self.admin or (owner is not None and owner == self.actor)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands back naive datetimes, which the store wrote in UTC."""
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).isoformat()


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'shingan.db').resolve()}"


def _sqlite_file(url: str) -> Path | None:
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != prefix + ":memory:":
        return Path(url[len(prefix) :])
    return None


_MIGRATION_LOCK = 0x5368696E67616E  # "Shingan", the advisory lock id for migrations


def normalise_url(url: str) -> str:
    """``postgresql://`` means the psycopg (3) driver, the one Shingan installs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


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
    db = _sqlite_file(url)
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
    if _sqlite_file(url) is None and not url.startswith("sqlite"):
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


def hash_key(key: str) -> str:
    """API keys are 256-bit random tokens, so one SHA-256 is enough to store them safely."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Store:
    def __init__(self, url: str) -> None:
        url = normalise_url(url)
        migrate(url)
        self.url = url
        self.engine, self._writer = _engines(url)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self._writer, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()
        self._writer.dispose()

    # --- reports and audit --------------------------------------------------------------------

    def _add_report(
        self,
        s: Session,
        report: dict[str, Any],
        actor: str,
        batch_id: str | None,
        owner: str | None = None,
    ) -> None:
        s.add(
            ReportRow(
                owner=(owner or actor)[:128],
                id=report["id"],
                sha256=report["media"]["sha256"],
                label=report["verdict"]["label"],
                confidence=report["verdict"]["confidence"],
                created_at=dt.datetime.fromisoformat(report["created_at"]),
                batch_id=batch_id,
                filename=(report["media"].get("filename") or None)
                and report["media"]["filename"][:255],
                body=json.dumps(report, ensure_ascii=False),
            )
        )
        s.add(
            AuditRow(
                at=now(),
                actor=actor[:128],
                action="verify" if batch_id is None else "batch_item",
                sha256=report["media"]["sha256"],
                report_id=report["id"],
                label=report["verdict"]["label"],
                versions=json.dumps(report["versions"], sort_keys=True),
            )
        )

    def save_report(
        self,
        report: dict[str, Any],
        *,
        actor: str,
        batch_id: str | None = None,
        owner: str | None = None,
    ) -> None:
        """Keep a report. ``actor`` goes to the audit log; ``owner`` (default: the actor) is who
        may read the report back when keys are in use."""
        with self._write.begin() as s:
            self._add_report(s, report, actor, batch_id, owner)

    def audit_event(self, actor: str, action: str, detail: str = "") -> None:
        """An audit row for something other than a verification (keys, banks, batches)."""
        with self._write.begin() as s:
            s.add(
                AuditRow(
                    at=now(),
                    actor=actor[:128],
                    action=action[:32],
                    sha256="",
                    report_id=None,
                    label=None,
                    versions=json.dumps({"detail": detail[:500]}),
                )
            )

    def get_report(self, report_id: str, viewer: Viewer | None = None) -> dict[str, Any] | None:
        """The report, or None if there is none or ``viewer`` may not see it."""
        with self._read() as s:
            row = s.get(ReportRow, report_id)
            if row is None or (viewer is not None and not viewer.may_see(row.owner)):
                return None
            report: dict[str, Any] = json.loads(row.body)
            return report

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._read() as s:
            rows = s.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)).all()
            return [
                {
                    "at": iso(r.at),
                    "actor": r.actor,
                    "action": r.action,
                    "sha256": r.sha256,
                    "report_id": r.report_id,
                    "label": r.label,
                    "versions": json.loads(r.versions),
                }
                for r in rows
            ]

    # --- batches ------------------------------------------------------------------------------

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
        (``holder``) are dropped in the same transaction: from then on the items need them."""
        with self._write.begin() as s:
            if holder is not None:
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
        with self._write.begin() as s:
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
        with self._read() as s:
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
        """Record an item's one result: a new report, a report reused from an identical file of
        the same batch, or an error (code, message). Returns False, recording nothing, when the
        item already has a result (another worker finished it first)."""
        with self._write.begin() as s:
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
                self._add_report(s, report, actor, batch_id)
            return True

    def complete_batch_if_done(self, batch_id: str) -> bool:
        """Mark the batch done when no item is unfinished. True only for the one caller that
        made the change (so the webhook is sent once)."""
        with self._write.begin() as s:
            left = s.scalar(
                select(func.count())
                .select_from(ItemRow)
                .where(ItemRow.batch_id == batch_id, ItemRow.status.in_(UNFINISHED))
            )
            if left:
                return False
            result = s.execute(
                update(BatchRow)
                .where(BatchRow.id == batch_id, BatchRow.status == RUNNING)
                .values(status=DONE, finished_at=now())
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def unfinished_items(self) -> list[int]:
        """Items still to do, oldest first (resumed when the service starts)."""
        with self._read() as s:
            return list(
                s.scalars(
                    select(ItemRow.id).where(ItemRow.status.in_(UNFINISHED)).order_by(ItemRow.id)
                )
            )

    def unfinished_batches(self) -> list[str]:
        with self._read() as s:
            return list(s.scalars(select(BatchRow.id).where(BatchRow.status == RUNNING)))

    def undelivered_webhooks(self) -> list[str]:
        """Done batches whose webhook was not delivered yet (retried when the service starts)."""
        with self._read() as s:
            return list(
                s.scalars(
                    select(BatchRow.id).where(
                        BatchRow.status == DONE, BatchRow.webhook_state.in_(("pending", "retrying"))
                    )
                )
            )

    # --- media the store's rows still need -----------------------------------------------------

    def _lock_media(self, s: Session, sha256: str) -> None:
        """Serialise holds and releases of one file. SQLite writers are serialised already
        (BEGIN IMMEDIATE); PostgreSQL takes a transaction-scoped advisory lock."""
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": int(sha256[:15], 16)})

    def _needed(self, s: Session, sha256: str) -> bool:
        items = s.scalar(
            select(func.count())
            .select_from(ItemRow)
            .where(ItemRow.sha256 == sha256, ItemRow.status.in_(UNFINISHED))
        )
        holds = s.scalar(
            select(func.count())
            .select_from(MediaHoldRow)
            .where(MediaHoldRow.sha256 == sha256, MediaHoldRow.expires_at > now())
        )
        return bool(items or holds)

    def hold_media(self, holder: str, sha256: str, ttl_s: float = HOLD_TTL_S) -> None:
        """Record that an intake needs this file; call it before the file is put in place, so a
        worker finishing another item with the same content cannot delete it in between."""
        with self._write.begin() as s:
            self._lock_media(s, sha256)
            s.add(
                MediaHoldRow(
                    holder=holder[:128],
                    sha256=sha256,
                    expires_at=now() + dt.timedelta(seconds=ttl_s),
                )
            )

    def drop_holds(self, holder: str) -> list[str]:
        """Forget an intake's holds (it failed, or its batch owns the files now); returns the
        files it held."""
        with self._write.begin() as s:
            shas = list(s.scalars(select(MediaHoldRow.sha256).where(MediaHoldRow.holder == holder)))
            s.execute(delete(MediaHoldRow).where(MediaHoldRow.holder == holder))
            return list(dict.fromkeys(shas))

    def drop_stale_holds(self, stale: Callable[[str], bool]) -> int:
        """Forget expired holds and those whose holder ``stale`` says is gone (a process that
        was killed during an intake); returns how many."""
        with self._write.begin() as s:
            rows = s.execute(select(MediaHoldRow.id, MediaHoldRow.holder, MediaHoldRow.expires_at))
            t = now()
            gone = [
                i
                for i, holder, expires in rows
                if (expires if expires.tzinfo else expires.replace(tzinfo=dt.UTC)) <= t
                or stale(holder)
            ]
            if gone:
                s.execute(delete(MediaHoldRow).where(MediaHoldRow.id.in_(gone)))
            return len(gone)

    def release_media(self, sha256: str, delete_file: Callable[[], None]) -> bool:
        """Delete a file (``delete_file``) unless an unfinished item or a live hold needs it,
        deciding and deleting in one transaction. Returns whether it was deleted."""
        with self._write.begin() as s:
            self._lock_media(s, sha256)
            if self._needed(s, sha256):
                return False
            delete_file()
            return True

    def needed_shas(self) -> set[str]:
        """Every file that unfinished items or live holds need."""
        with self._read() as s:
            items = s.scalars(
                select(ItemRow.sha256).where(ItemRow.status.in_(UNFINISHED)).distinct()
            )
            holds = s.scalars(
                select(MediaHoldRow.sha256).where(MediaHoldRow.expires_at > now()).distinct()
            )
            return set(items) | set(holds)

    def queue_depth(self) -> int:
        with self._read() as s:
            return int(
                s.scalar(
                    select(func.count()).select_from(ItemRow).where(ItemRow.status.in_(UNFINISHED))
                )
                or 0
            )

    def get_batch(self, batch_id: str) -> dict[str, Any] | None:
        """Status and counts of a batch (without its items)."""
        with self._read() as s:
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
            finished = counts[DONE] + counts[ERROR]
            return {
                "id": b.id,
                "status": b.status,
                "actor": b.actor,
                "created_at": iso(b.created_at),
                "finished_at": iso(b.finished_at),
                "total": b.total,
                "counts": {k: counts[k] for k in (QUEUED, RUNNING, DONE, ERROR)},
                "progress": round(finished / b.total, 4) if b.total else 1.0,
                "labels": dict(sorted(labels.items())),
                "language": b.language,
                "webhook": (
                    {
                        "url": display_url(b.webhook_url),
                        "state": b.webhook_state,
                        "attempts": b.webhook_attempts,
                    }
                    if b.webhook_url
                    else None
                ),
            }

    def webhook_target(self, batch_id: str) -> tuple[str, str] | None:
        with self._read() as s:
            b = s.get(BatchRow, batch_id)
            if b is None or not b.webhook_url:
                return None
            return b.webhook_url, b.webhook_secret or ""

    def set_webhook_state(self, batch_id: str, state: str, attempts: int) -> None:
        with self._write.begin() as s:
            s.execute(
                update(BatchRow)
                .where(BatchRow.id == batch_id)
                .values(webhook_state=state, webhook_attempts=attempts)
            )

    def batch_items(
        self, batch_id: str, offset: int = 0, limit: int = 1000
    ) -> list[dict[str, Any]]:
        with self._read() as s:
            rows = s.scalars(
                select(ItemRow)
                .where(ItemRow.batch_id == batch_id)
                .order_by(ItemRow.position)
                .offset(offset)
                .limit(limit)
            ).all()
            return [_item_dict(r) for r in rows]

    def batch_results(
        self, batch_id: str
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
        """(item, report or None) for every item in order, read in pages so a batch of
        thousands is never held in memory at once."""
        last = -1
        while True:
            with self._read() as s:
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
                yield _item_dict(item), (json.loads(body) if body else None)
            last = rows[-1][0].position

    # --- banks --------------------------------------------------------------------------------

    def _bump(self, s: Session, key: str) -> None:
        """Add one to a counter in the database itself (no lost update between processes)."""
        done = s.execute(update(MetaRow).where(MetaRow.key == key).values(value=MetaRow.value + 1))
        if not getattr(done, "rowcount", 0):
            s.add(MetaRow(key=key, value=1))

    def banks_state(self) -> tuple[int, int]:
        """(revision, epoch): the revision changes with every bank change, the epoch only when
        entries were removed (so cached indexes know whether appending is enough)."""
        with self._read() as s:
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
            with self._write.begin() as s:
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
                self._bump(s, "banks_revision")
        except IntegrityError as exc:
            raise StoreConflict(f"a bank named {name!r} exists already") from exc

    def get_bank(self, name: str, viewer: Viewer | None = None) -> dict[str, Any] | None:
        """The bank if it exists and ``viewer`` may see it (shared, theirs, or an admin)."""
        for b in self.list_banks(viewer, name=name):
            return b
        return None

    def list_banks(
        self, viewer: Viewer | None = None, *, name: str | None = None
    ) -> list[dict[str, Any]]:
        """Banks ``viewer`` may see, with their entry counts. ``writable`` says whether the
        viewer may add to or delete the bank."""
        with self._read() as s:
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
                {
                    "name": b.name,
                    "label": b.label,
                    "note": b.note,
                    "source": b.source,
                    "created_at": iso(b.created_at),
                    "entries": counts.get(b.name, 0),
                    "shared": b.shared,
                    "owner": b.owner,
                    "writable": viewer is None or viewer.may_see(b.owner),
                }
                for b in banks
            ]

    def usable_banks(self, actor: str) -> frozenset[str]:
        """Names of the banks looked up for ``actor``'s verifications: shared ones and its own
        (an admin's too: it sees other keys' banks, but they do not decide its verdicts)."""
        with self._read() as s:
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
        with self._write.begin() as s:
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
            self._bump(s, "banks_revision")
            return n

    def delete_bank(self, name: str) -> None:
        """Raises: StoreNotFound."""
        with self._write.begin() as s:
            if s.get(BankRow, name) is None:
                raise StoreNotFound(f"no bank named {name!r}")
            s.execute(delete(BankEntryRow).where(BankEntryRow.bank == name))
            s.execute(delete(BankRow).where(BankRow.name == name))
            self._bump(s, "banks_revision")
            self._bump(s, "banks_epoch")

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
            with self._read() as s:
                rows = s.execute(q.order_by(BankEntryRow.id).limit(50000)).all()
            if not rows:
                return
            for r in rows:
                yield BankEntryRecord(*r)
            last = rows[-1][0]

    # --- API keys -----------------------------------------------------------------------------

    def create_key(self, name: str, rate_per_minute: int | None = None, role: str = USER) -> str:
        """Make a key and return it; only its hash is kept, so it is shown once.

        Raises: StoreConflict when a key of that name exists.
        """
        key = "shg_" + secrets.token_urlsafe(32)
        try:
            with self._write.begin() as s:
                s.add(
                    ApiKeyRow(
                        name=name,
                        prefix=key[:10],
                        key_hash=hash_key(key),
                        created_at=now(),
                        rate_per_minute=rate_per_minute,
                        role=role,
                    )
                )
        except IntegrityError as exc:
            raise StoreConflict(f"a key named {name!r} exists already") from exc
        return key

    def check_key(self, key: str) -> ApiKey | None:
        """The live key with this value, or None (unknown or revoked)."""
        digest = hash_key(key)
        with self._read() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == digest))
            if row is None or row.revoked_at is not None:
                return None
            if not hmac.compare_digest(row.key_hash, digest):  # pragma: no cover - belt and braces
                return None
            return _key(row)

    def live_key(self, name: str) -> ApiKey | None:
        """The key of that name unless it was revoked (a signed-in page re-checks it)."""
        with self._read() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.name == name))
            return None if row is None or row.revoked_at is not None else _key(row)

    def list_keys(self) -> list[ApiKey]:
        with self._read() as s:
            return [_key(r) for r in s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.name))]

    def revoke_key(self, name: str) -> None:
        """Raises: StoreNotFound."""
        with self._write.begin() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.name == name))
            if row is None:
                raise StoreNotFound(f"no key named {name!r}")
            if row.revoked_at is None:
                row.revoked_at = now()

    def has_keys(self) -> bool:
        with self._read() as s:
            return bool(
                s.scalar(
                    select(func.count())
                    .select_from(ApiKeyRow)
                    .where(ApiKeyRow.revoked_at.is_(None))
                )
            )


def _key(r: ApiKeyRow) -> ApiKey:
    return ApiKey(
        r.id, r.name, r.prefix, r.created_at, r.revoked_at, r.rate_per_minute, r.role or USER
    )


def _item_dict(r: ItemRow) -> dict[str, Any]:
    return {
        "position": r.position,
        "filename": r.filename,
        "sha256": r.sha256,
        "bytes": r.bytes,
        "status": r.status,
        "attempts": r.attempts,
        "label": r.label,
        "report_id": r.report_id,
        "error": {"code": r.error_code, "message": r.error} if r.status == ERROR else None,
        "finished_at": iso(r.finished_at),
    }


@contextlib.contextmanager
def opened(url: str) -> Iterator[Store]:
    store = Store(url)
    try:
        yield store
    finally:
        store.close()
