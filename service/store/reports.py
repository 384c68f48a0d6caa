"""Reports (their full JSON plus indexed fields) and the append-only audit log: who asked, when,
the file's sha256, the verdict and the software and model versions that produced it. There is no
update or delete for the audit log."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.db import AuditRow, Database, ReportRow, aware, now
from service.store.keys import Viewer


@dataclass(frozen=True)
class AuditEvent:
    """One row of the audit log: a verification (``verify``, ``batch_item``) with the file's
    sha256, its report and verdict; or another event (``key_created``, ``bank_deleted``, ...)
    with an empty sha256 and its ``detail`` in ``versions``."""

    at: dt.datetime
    actor: str
    action: str
    sha256: str
    report_id: str | None
    label: str | None
    versions: dict[str, Any]  # the versions that made the verdict, or {"detail": ...}


def add_report(
    s: Session,
    report: dict[str, Any],
    actor: str,
    batch_id: str | None,
    owner: str | None = None,
) -> None:
    """Add a report and its audit row in the caller's transaction (a finished batch item is
    recorded with its report in one)."""
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


class ReportRepository:
    """The reports and the audit log of one database."""

    def __init__(self, db: Database) -> None:
        self._db = db

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
        with self._db.write.begin() as s:
            add_report(s, report, actor, batch_id, owner)

    def audit_event(self, actor: str, action: str, detail: str = "") -> None:
        """An audit row for something other than a verification (keys, banks, batches)."""
        with self._db.write.begin() as s:
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
        with self._db.read() as s:
            row = s.get(ReportRow, report_id)
            if row is None or (viewer is not None and not viewer.may_see(row.owner)):
                return None
            report: dict[str, Any] = json.loads(row.body)
            return report

    def audit(self, limit: int = 100) -> list[AuditEvent]:
        """The latest ``limit`` events, newest first."""
        with self._db.read() as s:
            rows = s.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)).all()
            return [
                AuditEvent(
                    at=aware(r.at),
                    actor=r.actor,
                    action=r.action,
                    sha256=r.sha256,
                    report_id=r.report_id,
                    label=r.label,
                    versions=json.loads(r.versions),
                )
                for r in rows
            ]
