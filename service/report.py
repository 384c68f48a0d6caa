"""The result of an analysis. Its JSON form, ``shingan.report/1``, is the contract model in
:mod:`service.contract`: the fields outside checks read are declared there, not derived from
these attributes by ``dataclasses.asdict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors.base import DetectorResult
from provenance.c2pa import C2paFinding
from provenance.hashing import FrameHash, PdqHash
from provenance.metadata import MetadataFinding
from provenance.watermarks import WatermarkFinding
from service import contract
from service.abstentions import Abstention
from service.banks import Match
from service.verdict import Verdict

SCHEMA = contract.SCHEMA


@dataclass(frozen=True)
class MediaInfo:
    sha256: str
    bytes: int
    mime: str
    kind: str
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    frames_analyzed: int | None = None
    filename: str | None = None
    pdq: PdqHash | None = None
    frame_hashes: tuple[FrameHash, ...] = ()
    incomplete: str | None = None  # where the file looks cut short (English)


@dataclass(frozen=True)
class TimelineEntry:
    """One analysed video frame: its time, hash and each detector's score."""

    time_s: float
    pdq: PdqHash | None
    scores: dict[str, float | None]
    faces: int | None = None  # filled when a face detector runs


@dataclass(frozen=True)
class Report:
    id: str
    created_at: str
    media: MediaInfo
    verdict: Verdict
    c2pa: C2paFinding | None
    metadata: MetadataFinding | None = None
    watermarks: tuple[WatermarkFinding, ...] = ()
    detectors: tuple[DetectorResult, ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()
    forensics: dict[str, str] | None = None
    matches: tuple[Match, ...] = ()
    abstentions: tuple[Abstention, ...] = ()
    warnings: tuple[str, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (schema ``shingan.report/1``)."""
        return self.contract().to_json_data()

    def contract(self) -> contract.Report:
        """The contract form of this result (validated: a report that breaks the contract fails
        here). Only where the report's shape differs from these objects is it spelled out."""
        m = self.media
        media = {
            **{name: getattr(m, name) for name in contract.Media.model_fields if name != "hashes"},
            "hashes": {
                "pdq": m.pdq.hex if m.pdq else None,
                "pdq_quality": m.pdq.quality if m.pdq else None,
                "frames": m.frame_hashes,
            },
        }
        return contract.Report.model_validate(
            {
                "schema": SCHEMA,
                "id": self.id,
                "language": self.verdict.language,
                "created_at": self.created_at,
                "media": media,
                "verdict": self.verdict,
                "provenance": {
                    "c2pa": self.c2pa
                    or C2paFinding(state="error", error="C2PA verification did not run"),
                    "metadata": self.metadata
                    or MetadataFinding(error="metadata is not read for this kind of file"),
                    "watermarks": self.watermarks,
                },
                "detectors": self.detectors,
                "matches": self.matches,
                "timeline": [
                    {
                        "time_s": e.time_s,
                        "pdq": e.pdq.hex if e.pdq else None,
                        "scores": e.scores,
                        "faces": e.faces,
                    }
                    for e in self.timeline
                ],
                "forensics": self.forensics,
                "warnings": self.warnings,
                "abstentions": self.abstentions,
                "timings_ms": self.timings_ms,
                "versions": self.versions,
            }
        )
