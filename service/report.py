"""The ``shingan.report/1`` report: dataclasses and their JSON form.

Outside checks read the fields named in docs/design.md, so :meth:`Report.to_dict` spells them out
explicitly instead of relying on ``dataclasses.asdict``: renaming an attribute must never
rename a report field by accident. Fields may be added; none may be removed or renamed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detectors.base import DetectorResult
from provenance.c2pa import C2paFinding, Ingredient
from provenance.hashing import FrameHash, PdqHash
from provenance.metadata import MetadataFinding
from provenance.watermarks import WatermarkFinding
from service.abstentions import Abstention
from service.verdict import Match, Verdict

SCHEMA = "shingan.report/1"


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
        return {
            "schema": SCHEMA,
            "id": self.id,
            "language": self.verdict.language,
            "created_at": self.created_at,
            "media": {
                "sha256": self.media.sha256,
                "bytes": self.media.bytes,
                "mime": self.media.mime,
                "kind": self.media.kind,
                "width": self.media.width,
                "height": self.media.height,
                "duration_s": self.media.duration_s,
                "frames_analyzed": self.media.frames_analyzed,
                "filename": self.media.filename,
                "hashes": {
                    "pdq": self.media.pdq.hex if self.media.pdq else None,
                    "pdq_quality": self.media.pdq.quality if self.media.pdq else None,
                    "frames": [
                        {"time_s": f.time_s, "pdq": f.hash.hex, "pdq_quality": f.hash.quality}
                        for f in self.media.frame_hashes
                    ],
                },
            },
            "verdict": verdict_to_dict(self.verdict),
            "provenance": {
                "c2pa": c2pa_to_dict(self.c2pa),
                "metadata": metadata_to_dict(self.metadata),
                "watermarks": [watermark_to_dict(w) for w in self.watermarks],
            },
            "detectors": [detector_to_dict(d) for d in self.detectors],
            "matches": [
                {
                    "bank": m.bank,
                    "entry": m.entry,
                    "distance": m.distance,
                    "label": m.label,
                    "note": m.note,
                }
                for m in self.matches
            ],
            "timeline": [
                {
                    "time_s": e.time_s,
                    "pdq": e.pdq.hex if e.pdq else None,
                    "scores": dict(e.scores),
                    "faces": e.faces,
                }
                for e in self.timeline
            ],
            "forensics": dict(self.forensics) if self.forensics else None,
            "warnings": list(self.warnings),
            "abstentions": [{"code": a.code, "message": a.message} for a in self.abstentions],
            "timings_ms": dict(self.timings_ms),
            "versions": dict(self.versions),
        }


def verdict_to_dict(v: Verdict) -> dict[str, Any]:
    return {
        "label": v.label,
        "confidence": v.confidence,
        "basis": list(v.basis),
        "score": v.score,
        "summary": v.summary,
        "rule": v.rule,
        "stability": (
            None
            if v.stability is None
            else {
                "stable": v.stability.stable,
                "tried": [
                    {"variant": t.variant, "scores": dict(t.scores), "decision_holds": t.holds}
                    for t in v.stability.trials
                ],
            }
        ),
        "reasons": [
            {
                "signal": r.signal,
                "finding": r.finding,
                "effect": r.effect,
                "detail": r.detail,
                "rule": r.rule,
            }
            for r in v.reasons
        ],
    }


def _ingredient(i: Ingredient) -> dict[str, Any]:
    return {
        "title": i.title,
        "format": i.format,
        "relationship": i.relationship,
        "manifest_label": i.manifest_label,
        "has_manifest": i.has_manifest,
        "claim_generator": i.claim_generator,
        "signer": i.signer,
        "digital_source_type": i.digital_source_type,
        "ai_declared": i.ai_declared,
        "failures": list(i.failures),
        "thumbnail": i.thumbnail,
        "ingredients": [_ingredient(c) for c in i.ingredients],
    }


def c2pa_to_dict(f: C2paFinding | None) -> dict[str, Any]:
    """The ``provenance.c2pa`` object. A stage that did not run reads as ``error``."""
    if f is None:
        f = C2paFinding(state="error", error="C2PA verification did not run")
    signer = None
    if f.signer is not None:
        signer = {
            "common_name": f.signer.common_name,
            "organization": f.signer.organization,
            "issuer": f.signer.issuer,
            "issuer_organization": f.signer.issuer_organization,
            "serial": f.signer.serial,
            "algorithm": f.signer.algorithm,
            "not_before": f.signer.not_before,
            "not_after": f.signer.not_after,
        }
    timestamp = None
    if f.timestamp is not None:
        timestamp = {
            "authority": f.timestamp.authority,
            "time": f.timestamp.time,
            "trusted": f.timestamp.trusted,
        }
    return {
        "state": f.state,
        "ai_declared": f.ai_declared,
        "digital_source_type": f.digital_source_type,
        "ai_declarations": [
            {"digital_source_type": d.digital_source_type, "where": d.where}
            for d in f.ai_declarations
        ],
        "claim_generator": f.claim_generator,
        "title": f.title,
        "format": f.format,
        "manifest_label": f.manifest_label,
        "signer": signer,
        "signed_at": f.signed_at,
        "timestamp": timestamp,
        "actions": [
            {
                "action": a.action,
                "software_agent": a.software_agent,
                "digital_source_type": a.digital_source_type,
                "when": a.when,
                "description": a.description,
            }
            for a in f.actions
        ],
        "ingredients": [_ingredient(i) for i in f.ingredients],
        "codes": {
            "success": list(f.codes.success),
            "informational": list(f.codes.informational),
            "failure": list(f.codes.failure),
        },
        "status": [
            {
                "code": s.code,
                "kind": s.kind,
                "scope": s.scope,
                "explanation": s.explanation,
                "url": s.url,
            }
            for s in f.status
        ],
        "integrity_failures": list(f.integrity_failures),
        "credential_failures": list(f.credential_failures),
        "other_failures": list(f.other_failures),
        "ingredient_failures": list(f.ingredient_failures),
        "thumbnail": f.thumbnail,
        "remote_url": f.remote_url,
        "error": f.error,
    }


def metadata_to_dict(m: MetadataFinding | None) -> dict[str, Any]:
    """``provenance.metadata``; a file whose metadata was not read has ``error`` set."""
    if m is None:
        m = MetadataFinding(error="metadata is not read for this kind of file")
    camera = None
    if m.camera is not None:
        camera = {
            "make": m.camera.make,
            "model": m.camera.model,
            "lens": m.camera.lens,
            "serial": m.camera.serial,
            "capture_time": m.camera.capture_time,
        }
    return {
        "generator": m.generator,
        "ai_declared": m.ai_declared,
        "digital_source_type": m.digital_source_type,
        "signatures": [
            {
                "name": s.name,
                "field": s.field,
                "evidence": s.evidence,
                "model": s.model,
                "sampler": s.sampler,
                "seed": s.seed,
                "steps": s.steps,
                "prompt": s.prompt,
                "negative_prompt": s.negative_prompt,
                "variant": s.variant,
            }
            for s in m.signatures
        ],
        "camera": camera,
        "software": list(m.software),
        "editors": list(m.editors),
        "modified_at": m.modified_at,
        "has_gps": m.has_gps,
        "has_makernote": m.has_makernote,
        "inconsistencies": list(m.inconsistencies),
        "fields": dict(m.fields),
        "error": m.error,
    }


def watermark_to_dict(w: WatermarkFinding) -> dict[str, Any]:
    return {
        "scheme": w.scheme,
        "label": w.label,
        "detected": w.detected,
        "confidence": w.confidence,
        "payload": w.payload,
        "bits_matched": w.bits_matched,
        "bits_total": w.bits_total,
        "threshold": w.threshold,
        "p_chance": w.p_chance,
        "size_tried": w.size_tried,
        "applicable": w.applicable,
        "note": w.note,
    }


def detector_to_dict(d: DetectorResult) -> dict[str, Any]:
    return {
        "name": d.name,
        "version": d.version,
        "kind": d.kind,
        "applicable": d.applicable,
        "score": d.score,
        "threshold": d.threshold,
        "threshold_fpr": d.threshold_fpr,
        "above_threshold": d.above_threshold,
        "notes": d.notes,
        "details": dict(d.details),
    }
