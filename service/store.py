"""Report storage: SQLAlchemy over a SQLite file by default, PostgreSQL by URL.

Reports are kept (their full JSON plus indexed fields); media bytes are not. Every verification
appends a row to the audit log: who asked, when, the file's sha256, the verdict and the software
and model versions that produced it. The audit log is append-only: the store exposes no update
or delete for it. Schema changes are Alembic migrations (``service/migrations``), applied when
the store opens.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


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


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'shingan.db').resolve()}"


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the latest schema."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")


class Store:
    def __init__(self, url: str) -> None:
        migrate(url)
        self.engine: Engine = create_engine(url, future=True)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def save_report(
        self, report: dict[str, Any], *, actor: str, batch_id: str | None = None
    ) -> None:
        created = dt.datetime.fromisoformat(report["created_at"])
        with self._sessions.begin() as s:
            s.add(
                ReportRow(
                    id=report["id"],
                    sha256=report["media"]["sha256"],
                    label=report["verdict"]["label"],
                    confidence=report["verdict"]["confidence"],
                    created_at=created,
                    batch_id=batch_id,
                    filename=report["media"].get("filename"),
                    body=json.dumps(report, ensure_ascii=False),
                )
            )
            s.add(
                AuditRow(
                    at=dt.datetime.now(dt.UTC),
                    actor=actor[:128],
                    action="verify",
                    sha256=report["media"]["sha256"],
                    report_id=report["id"],
                    label=report["verdict"]["label"],
                    versions=json.dumps(report["versions"], sort_keys=True),
                )
            )

    def get_report(self, report_id: str) -> dict[str, Any] | None:
        with Session(self.engine) as s:
            row = s.get(ReportRow, report_id)
            return json.loads(row.body) if row else None

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            rows = s.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)).all()
            return [
                {
                    "at": r.at.isoformat(),
                    "actor": r.actor,
                    "action": r.action,
                    "sha256": r.sha256,
                    "report_id": r.report_id,
                    "label": r.label,
                    "versions": json.loads(r.versions),
                }
                for r in rows
            ]
