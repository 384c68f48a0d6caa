"""Verifying one file for a caller: the one flow behind ``POST /v1/verify`` and the page's upload.

Both entry points used to carry their own copy of it, and the copies had drifted: the page never
kept media under ``media_retention_days``. Here the flow is: the caller's banks, analysis, the
media copy when retention is on, the report saved with its owner and an audit row.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from service.media_store import MediaStore
from service.pipeline import AnalyzeOptions, analyze
from service.report import Report
from service.stages import Progress
from service.store import Store


@dataclass(frozen=True)
class Verified:
    report: Report
    data: dict[str, Any]  # the report's JSON form, as saved


@dataclass(frozen=True)
class Verifier:
    """Verification with the service's loaded pipeline, store and media folder."""

    options: AnalyzeOptions
    store: Store
    media: MediaStore

    def verify(
        self,
        path: Path,
        *,
        caller: str,
        audit_as: str | None = None,
        filename: str | None = None,
        language: str = "en",
        thumbnails: bool = False,
        forensics: bool = False,
        manifest: bytes | None = None,
        progress: Progress | None = None,
    ) -> Verified:
        """Analyse the file at ``path`` for ``caller`` (who owns the report and whose banks are
        searched) and keep the report. ``audit_as`` names the caller in the audit log when the
        channel should show there (the page logs ``web:<caller>``). ``manifest`` is a sidecar
        manifest store to validate the file against.

        Raises:
            provenance.media.MediaError: the file cannot be analysed.
        """
        options = replace(
            self.options,
            banks=self.options.banks.for_actor(caller),
            include_thumbnails=thumbnails,
            include_forensics=forensics,
            language=language,
        )
        report = analyze(path, options, filename=filename, manifest=manifest, progress=progress)
        self.media.keep_copy(path, report.media.sha256)
        data = report.to_dict()
        self.store.reports.save_report(data, actor=audit_as or caller, owner=caller)
        return Verified(report, data)
