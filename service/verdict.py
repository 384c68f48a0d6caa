"""Fuse signal findings into one explained verdict. Pure: no I/O, no clock, no globals.

The precedence rules of docs/design.md are a table (:data:`RULES`), strongest first. Each signal is
turned into *claims*: what it says, which label it argues for (or none), how strongly, and
whether it may decide on its own. The decisive claim of the lowest-numbered rule sets the label;
every claim is kept as a reason with its effect relative to that label, so conflicts are shown
rather than dropped.

Implemented: C2PA (rules 1, 2, 6), watermarks (rule 3), generator metadata (rule 5) and the
default (rule 8). Known-media matches (4) and detectors (7) add claims the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal

from detectors.base import DetectorResult
from provenance.c2pa import C2paFinding
from provenance.metadata import MetadataFinding
from provenance.watermarks import WatermarkFinding
from service.messages import DEFAULT_LANGUAGE, M, Msg, render

Label = Literal["authentic", "ai_generated", "manipulated", "inconclusive"]
Confidence = Literal["high", "medium", "low"]
Effect = Literal["supports", "contradicts", "neutral"]
Signal = Literal["c2pa", "watermark", "metadata", "known_media", "detector"]


class Rule(IntEnum):
    """docs/design.md's precedence, strongest first; the report gives the number."""

    C2PA_INTEGRITY = 1
    C2PA_AI_DECLARED = 2
    WATERMARK = 3
    KNOWN_MEDIA = 4
    GENERATOR_METADATA = 5
    C2PA_TRUSTED_CAPTURE = 6
    DETECTORS = 7
    DEFAULT = 8

    @property
    def number(self) -> int:
        return int(self)

    @property
    def description(self) -> str:
        return _RULE_DESCRIPTIONS[self]


_RULE_DESCRIPTIONS: dict[Rule, str] = {
    Rule.C2PA_INTEGRITY: "C2PA integrity failure: the file changed after it was signed",
    Rule.C2PA_AI_DECLARED: "AI generation declared in a valid C2PA manifest",
    Rule.WATERMARK: "a generator watermark decoded above its false-positive threshold",
    Rule.KNOWN_MEDIA: "a close match in a known-media bank",
    Rule.GENERATOR_METADATA: "generator metadata in the file",
    Rule.C2PA_TRUSTED_CAPTURE: "trusted C2PA provenance with none of the above",
    Rule.DETECTORS: "statistical detectors above a calibrated threshold",
    Rule.DEFAULT: "nothing conclusive",
}

#: Every rule, strongest first. Claims cite them.
RULES: tuple[Rule, ...] = tuple(Rule)


@dataclass(frozen=True)
class Claim:
    """What one signal says. ``label`` is ``None`` for context that argues for no label."""

    signal: Signal
    finding: str
    rule: Rule
    label: Label | None
    confidence: Confidence
    decisive: bool
    detail: str  # English; ``message`` renders it in other languages
    message: Msg | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Reason:
    signal: Signal
    finding: str
    effect: Effect
    detail: str
    rule: Rule


@dataclass(frozen=True)
class StabilityTrial:
    """One re-encoding of the image and whether the detectors' decision held under it."""

    variant: str  # e.g. "jpeg85", "jpeg70", "resize0.75"
    scores: dict[str, float | None]
    holds: bool


@dataclass(frozen=True)
class Stability:
    """Re-scoring of a detector-only decision after realistic re-encodings."""

    trials: tuple[StabilityTrial, ...]

    @property
    def stable(self) -> bool:
        return all(t.holds for t in self.trials)


@dataclass(frozen=True)
class Verdict:
    label: Label
    confidence: Confidence
    basis: tuple[Signal, ...]
    score: float | None
    summary: str
    reasons: tuple[Reason, ...]
    rule: Rule
    stability: Stability | None = None
    language: str = DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Match:
    """A known-media bank entry close to the file (rule 4)."""

    bank: str
    entry: str
    label: Label  # what the bank says the entry is: authentic, ai_generated or manipulated
    distance: int  # PDQ Hamming distance (0-256)
    note: str = ""


@dataclass(frozen=True)
class Findings:
    """Everything the verdict may use. ``None`` means the signal did not run."""

    c2pa: C2paFinding | None = None
    metadata: MetadataFinding | None = None
    watermarks: tuple[WatermarkFinding, ...] | None = None
    detectors: tuple[DetectorResult, ...] | None = None
    matches: tuple[Match, ...] | None = None
    stability: Stability | None = None


def collect_claims(findings: Findings) -> list[Claim]:
    claims: list[Claim] = []
    if findings.c2pa is not None:
        claims.extend(c2pa_claims(findings.c2pa))
    if findings.watermarks is not None:
        claims.extend(watermark_claims(findings.watermarks))
    if findings.matches is not None:
        claims.extend(match_claims(findings.matches))
    if findings.metadata is not None:
        claims.extend(metadata_claims(findings.metadata))
    if findings.detectors is not None:
        claims.extend(detector_claims(findings.detectors))
    return claims


def detector_score(results: tuple[DetectorResult, ...] | None) -> float | None:
    """The verdict's ``score``: the highest calibrated score of the applicable detectors."""
    scores = [r.score for r in results or () if r.applicable and r.score is not None]
    return max(scores) if scores else None


def _claim(
    signal: Signal,
    finding: str,
    rule: Rule,
    label: Label | None,
    confidence: Confidence,
    decisive: bool,
    message: Msg,
) -> Claim:
    return Claim(signal, finding, rule, label, confidence, decisive, render(message), message)


def fuse(findings: Findings, lang: str = DEFAULT_LANGUAGE) -> Verdict:
    """Apply the precedence rules to the findings and explain the result in ``lang``."""
    claims = collect_claims(findings)
    decisive = sorted((c for c in claims if c.decisive), key=lambda c: c.rule)
    if decisive:
        top = decisive[0]
        label, confidence, rule = top.label or "inconclusive", top.confidence, top.rule
        basis = tuple(dict.fromkeys(c.signal for c in decisive if c.label == label))
    else:
        top = None
        label, confidence, rule, basis = "inconclusive", "low", Rule.DEFAULT, ()
    stability = findings.stability
    summary: Msg | None = None
    if top is not None and top.signal == "detector" and stability and not stability.stable:
        failed = ", ".join(t.variant for t in stability.trials if not t.holds)
        claims.append(
            _claim(
                "detector",
                "detector.unstable",
                Rule.DETECTORS,
                None,
                "low",
                False,
                M("detector.unstable", failed=failed),
            )
        )
        label, confidence, rule, basis, top = "inconclusive", "low", Rule.DEFAULT, (), None
        summary = M("summary.inconclusive", why=M("why.unstable"))
    reasons = tuple(_reason(c, label, lang) for c in sorted(claims, key=lambda c: c.rule))
    return Verdict(
        label=label,
        confidence=confidence,
        basis=basis,
        score=detector_score(findings.detectors),
        summary=render(summary or _summary(label, top, findings), lang),
        reasons=reasons,
        rule=rule,
        stability=stability if top is None or top.signal == "detector" else None,
        language=lang,
    )


def _reason(claim: Claim, label: Label, lang: str = DEFAULT_LANGUAGE) -> Reason:
    effect: Effect
    if claim.label is None:
        effect = "neutral"
    elif claim.label == label:
        effect = "supports"
    elif label == "inconclusive":
        effect = "neutral"
    else:
        effect = "contradicts"
    detail = render(claim.message, lang) if claim.message is not None else claim.detail
    return Reason(claim.signal, claim.finding, effect, detail, claim.rule)


# --- C2PA -------------------------------------------------------------------------------------


def _who(f: C2paFinding) -> Msg:
    if f.signer is None:
        return M("who.unknown")
    name = f.signer.organization or f.signer.common_name
    if not name:
        return M("who.unnamed")
    if f.signer.common_name and f.signer.organization and f.signer.common_name != name:
        name = f"{f.signer.common_name} ({f.signer.organization})"
    return M("who.quoted", name=name)


def _codes(codes: Iterable[str]) -> str:
    return ", ".join(codes)


def c2pa_claims(f: C2paFinding) -> Iterable[Claim]:
    """Turn a C2PA finding into claims for rules 1, 2 and 6 (and context for the rest)."""
    if f.state == "absent":
        yield _claim("c2pa", "c2pa.absent", Rule.DEFAULT, None, "low", False, M("c2pa.absent"))
        return
    if f.state == "error":
        if f.error and f.remote_url:
            msg = M("c2pa.error.remote", error=f.error, url=f.remote_url)
        elif f.error:
            msg = M("c2pa.error", error=f.error)
        else:
            msg = M("c2pa.error.plain")
        yield _claim("c2pa", "c2pa.error", Rule.DEFAULT, None, "low", False, msg)
        return

    tampered = bool(f.integrity_failures)
    if tampered:
        yield _claim(
            "c2pa",
            "c2pa.integrity_failure",
            Rule.C2PA_INTEGRITY,
            "manipulated",
            "high",
            True,
            M("c2pa.integrity_failure", codes=_codes(f.integrity_failures)),
        )
    problems = [c for c in f.credential_failures if c != "signingCredential.untrusted"]
    if problems:
        yield _claim(
            "c2pa",
            "c2pa.credential_problem",
            Rule.C2PA_TRUSTED_CAPTURE,
            None,
            "low",
            False,
            M("c2pa.credential_problem", who=_who(f), codes=_codes(problems)),
        )
    if f.other_failures:
        yield _claim(
            "c2pa",
            "c2pa.other_failure",
            Rule.C2PA_TRUSTED_CAPTURE,
            None,
            "low",
            False,
            M("c2pa.other_failure", codes=_codes(f.other_failures)),
        )
    if f.ingredient_failures:
        yield _claim(
            "c2pa",
            "c2pa.ingredient_failure",
            Rule.C2PA_TRUSTED_CAPTURE,
            None,
            "low",
            False,
            M("c2pa.ingredient_failure", codes=_codes(f.ingredient_failures)),
        )

    signed_ok = f.state in ("valid", "trusted")
    if f.ai_declared:
        where = f.ai_declarations[0].where if f.ai_declarations else "the manifest"
        kind = f.digital_source_type or "AI"
        if signed_ok and not tampered:
            trusted = f.state == "trusted"
            key = "c2pa.ai_declared.trusted" if trusted else "c2pa.ai_declared.untrusted"
            yield _claim(
                "c2pa",
                "c2pa.ai_declared",
                Rule.C2PA_AI_DECLARED,
                "ai_generated",
                "high" if trusted else "medium",
                True,
                M(key, kind=kind, where=where, who=_who(f)),
            )
        else:
            key = (
                "c2pa.ai_declared_unverified.tampered"
                if tampered
                else "c2pa.ai_declared_unverified.invalid"
            )
            yield _claim(
                "c2pa",
                "c2pa.ai_declared_unverified",
                Rule.C2PA_AI_DECLARED,
                None,
                "low",
                False,
                M(key, kind=kind, where=where),
            )

    if f.state == "trusted" and not tampered and not f.ai_declared:
        key = "c2pa.trusted.capture" if f.capture_declared else "c2pa.trusted.history"
        yield _claim(
            "c2pa",
            "c2pa.trusted",
            Rule.C2PA_TRUSTED_CAPTURE,
            "authentic",
            "high",
            True,
            M(key, who=_who(f)),
        )
    elif f.state == "valid" and not f.ai_declared:
        yield _claim(
            "c2pa",
            "c2pa.valid_untrusted",
            Rule.C2PA_TRUSTED_CAPTURE,
            None,
            "low",
            False,
            M("c2pa.valid_untrusted", who=_who(f)),
        )
    elif f.state == "invalid" and not tampered and not f.ai_declared:
        yield _claim(
            "c2pa",
            "c2pa.invalid_credentials",
            Rule.C2PA_TRUSTED_CAPTURE,
            None,
            "low",
            False,
            M("c2pa.invalid_credentials"),
        )


# --- summary ----------------------------------------------------------------------------------


def _summary(label: Label, top: Claim | None, findings: Findings) -> Msg:
    f = findings.c2pa
    if top and top.signal == "known_media" and findings.matches:
        best = min(findings.matches, key=lambda m: m.distance)
        return M(f"summary.match.{label}", bank=best.bank, entry=best.entry)
    if top and top.signal == "detector" and label in ("ai_generated", "manipulated"):
        return M(f"summary.detector.{label}")
    if label == "ai_generated" and top and top.signal == "watermark":
        return M("summary.watermark")
    if label == "ai_generated" and top and top.signal == "metadata":
        m = findings.metadata
        return M("summary.metadata", name=_generator_name(m) if m else M("generator.unknown"))
    if label == "manipulated" and top and top.signal == "c2pa":
        return M("summary.manipulated.c2pa")
    if label == "ai_generated" and top and top.signal == "c2pa" and f is not None:
        if f.state == "trusted":
            return M("summary.ai.c2pa.trusted", who=_who(f))
        return M("summary.ai.c2pa.untrusted")
    if label == "authentic" and f is not None:
        return M("summary.authentic", who=_who(f))
    # inconclusive
    if f is None or f.state == "absent":
        why = "why.absent"
    elif f.state in ("error", "valid", "invalid"):
        why = f"why.{f.state}"
    else:
        why = "why.other"
    return M("summary.inconclusive", why=M(why))


# --- watermarks -------------------------------------------------------------------------------


def watermark_claims(findings: tuple[WatermarkFinding, ...]) -> Iterable[Claim]:
    """Rule 3: a generator watermark decoded above its false-positive threshold."""
    detected = [w for w in findings if w.detected]
    for w in detected:
        resized = M("watermark.resized", size=w.size_tried) if w.size_tried != "original" else ""
        yield _claim(
            "watermark",
            f"watermark.{w.scheme}",
            Rule.WATERMARK,
            "ai_generated",
            "high",
            True,
            M(
                "watermark.detected",
                label=w.label,
                matched=w.bits_matched,
                total=w.bits_total,
                p=f"{w.p_chance:.1e}",
                resized=resized,
            ),
        )
    if not detected and any(w.applicable for w in findings):
        yield _claim(
            "watermark", "watermark.none", Rule.WATERMARK, None, "low", False, M("watermark.none")
        )


# --- known media ------------------------------------------------------------------------------

#: PDQ distances (of 256 bits) measured in docs/measurements/hashing.md.
MATCH_SAME = 16  # every JPEG 50-90 copy, 90% of 0.5x copies
MATCH_CLOSE = 31  # no distinct pair of 90,100 came this close
MATCH_NEAR = 40  # 1 distinct pair of 90,100 came this close


def match_claims(matches: tuple[Match, ...]) -> Iterable[Claim]:
    """Rule 4: the bank entry's label; confidence from the distance."""
    for m in sorted(matches, key=lambda m: m.distance)[:5]:
        values = {"bank": m.bank, "entry": m.entry, "label": m.label, "distance": m.distance}
        if m.distance <= MATCH_CLOSE:
            confidence: Confidence = "high" if m.distance <= MATCH_SAME else "medium"
            yield _claim(
                "known_media",
                "known_media.match",
                Rule.KNOWN_MEDIA,
                m.label,
                confidence,
                True,
                M("match.close", **values),
            )
        elif m.distance <= MATCH_NEAR:
            yield _claim(
                "known_media",
                "known_media.near",
                Rule.KNOWN_MEDIA,
                None,
                "low",
                False,
                M("match.near", **values),
            )


# --- metadata ---------------------------------------------------------------------------------


def _generator_name(m: MetadataFinding) -> str | Msg:
    named = [s for s in m.signatures if s.name != "iptc-digital-source-type"]
    if named:
        return named[0].name
    if m.digital_source_type:
        return M("generator.declared", type=m.digital_source_type)
    return M("generator.unknown")


def metadata_claims(m: MetadataFinding) -> Iterable[Claim]:
    """Rule 5: generator metadata; camera and editing metadata as context."""
    if m.ai_declared and m.signatures:
        parts: list[Msg] = []
        for sig in m.signatures[:4]:
            what: str | Msg = (
                sig.name if sig.name != "iptc-digital-source-type" else M("metadata.iptc")
            )
            if sig.model:
                parts.append(M("metadata.part.model", what=what, field=sig.field, model=sig.model))
            else:
                parts.append(M("metadata.part", what=what, field=sig.field))
        joined = M("join." + str(len(parts)), **{f"p{i}": p for i, p in enumerate(parts)})
        yield _claim(
            "metadata",
            "metadata.generator",
            Rule.GENERATOR_METADATA,
            "ai_generated",
            "medium",
            True,
            M("metadata.generator", parts=joined),
        )
    if m.camera is not None:
        yield _claim(
            "metadata",
            "metadata.camera",
            Rule.GENERATOR_METADATA,
            None,
            "low",
            False,
            M("metadata.camera", camera=m.camera.display),
        )
    for note in m.inconsistencies:
        # Written by provenance.metadata in English; shown as it is in every language.
        yield _claim(
            "metadata",
            "metadata.inconsistency",
            Rule.GENERATOR_METADATA,
            None,
            "low",
            False,
            M("raw", text=note),
        )


# --- detectors --------------------------------------------------------------------------------

#: Only thresholds chosen for at most this false-positive rate let a detector decide a label.
MAX_DECIDING_FPR = 0.01

_DETECTOR_LABELS: dict[str, Label] = {
    "synthetic_image": "ai_generated",
    "image_manipulation": "manipulated",
    "face_manipulation": "manipulated",
}


def detector_claims(results: tuple[DetectorResult, ...]) -> Iterable[Claim]:
    """Rule 7: calibrated detectors above thresholds chosen for a stated false-positive rate.

    A detector decides (``medium``, never ``high``) only with a threshold chosen for at most
    :data:`MAX_DECIDING_FPR` false positives; above a looser threshold its score is a lead shown
    to people, not a label. A detector below its threshold is never evidence of authenticity.
    """
    for r in results:
        label = _DETECTOR_LABELS.get(r.kind)
        if label is None:
            continue
        finding = f"detector.{r.name}"
        if not r.applicable:
            msg = M("detector.not_applicable", name=r.name, notes=r.notes or "not applicable")
            yield _claim("detector", finding, Rule.DETECTORS, None, "low", False, msg)
            continue
        if r.score is None or r.threshold is None:
            continue
        fpr = f"{r.threshold_fpr:.0%}" if r.threshold_fpr is not None else "?"
        values = {"name": r.name, "score": f"{r.score:.2f}", "threshold": f"{r.threshold:.2f}"}
        decides = r.threshold_fpr is not None and r.threshold_fpr <= MAX_DECIDING_FPR
        if r.above_threshold and decides:
            yield _claim(
                "detector",
                finding,
                Rule.DETECTORS,
                label,
                "medium",
                True,
                M("detector.decides", fpr=fpr, **values),
            )
        elif r.above_threshold:
            yield _claim(
                "detector",
                finding,
                Rule.DETECTORS,
                None,
                "low",
                False,
                M("detector.lead", fpr=fpr, **values),
            )
        else:
            yield _claim(
                "detector",
                finding,
                Rule.DETECTORS,
                None,
                "low",
                False,
                M("detector.below", **values),
            )
