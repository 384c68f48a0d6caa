"""Fuse signal findings into one explained verdict. Pure: no I/O, no clock, no globals.

The precedence rules of DESIGN.md are a table (:data:`RULES`), strongest first. Each signal is
turned into *claims*: what it says, which label it argues for (or none), how strongly, and
whether it may decide on its own. The decisive claim of the lowest-numbered rule sets the label;
every claim is kept as a reason with its effect relative to that label, so conflicts are shown
rather than dropped.

Implemented: C2PA (rules 1, 2, 6), watermarks (rule 3), generator metadata (rule 5) and the
default (rule 8). Known-media matches (4) and detectors (7) add claims the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from detectors.base import DetectorResult
from provenance.c2pa import C2paFinding
from provenance.metadata import MetadataFinding
from provenance.watermarks import WatermarkFinding

Label = Literal["authentic", "ai_generated", "manipulated", "inconclusive"]
Confidence = Literal["high", "medium", "low"]
Effect = Literal["supports", "contradicts", "neutral"]
Signal = Literal["c2pa", "watermark", "metadata", "known_media", "detector"]


@dataclass(frozen=True)
class Rule:
    number: int
    name: str
    description: str


#: DESIGN.md's precedence, strongest first. Claims cite these numbers.
RULES: tuple[Rule, ...] = (
    Rule(1, "c2pa_integrity", "C2PA integrity failure: the file changed after it was signed"),
    Rule(2, "c2pa_ai_declared", "AI generation declared in a valid C2PA manifest"),
    Rule(3, "watermark", "a generator watermark decoded above its false-positive threshold"),
    Rule(4, "known_media", "a close match in a known-media bank"),
    Rule(5, "generator_metadata", "generator metadata in the file"),
    Rule(6, "c2pa_trusted_capture", "trusted C2PA provenance with none of the above"),
    Rule(7, "detectors", "statistical detectors above a calibrated threshold"),
    Rule(8, "default", "nothing conclusive"),
)


@dataclass(frozen=True)
class Claim:
    """What one signal says. ``label`` is ``None`` for context that argues for no label."""

    signal: Signal
    finding: str
    rule: int
    label: Label | None
    confidence: Confidence
    decisive: bool
    detail: str


@dataclass(frozen=True)
class Reason:
    signal: Signal
    finding: str
    effect: Effect
    detail: str
    rule: int


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
    rule: int
    stability: Stability | None = None


@dataclass(frozen=True)
class Findings:
    """Everything the verdict may use. ``None`` means the signal did not run."""

    c2pa: C2paFinding | None = None
    metadata: MetadataFinding | None = None
    watermarks: tuple[WatermarkFinding, ...] | None = None
    detectors: tuple[DetectorResult, ...] | None = None
    stability: Stability | None = None


def collect_claims(findings: Findings) -> list[Claim]:
    claims: list[Claim] = []
    if findings.c2pa is not None:
        claims.extend(c2pa_claims(findings.c2pa))
    if findings.watermarks is not None:
        claims.extend(watermark_claims(findings.watermarks))
    if findings.metadata is not None:
        claims.extend(metadata_claims(findings.metadata))
    if findings.detectors is not None:
        claims.extend(detector_claims(findings.detectors))
    return claims


def detector_score(results: tuple[DetectorResult, ...] | None) -> float | None:
    """The verdict's ``score``: the highest calibrated score of the applicable detectors."""
    scores = [r.score for r in results or () if r.applicable and r.score is not None]
    return max(scores) if scores else None


def fuse(findings: Findings) -> Verdict:
    """Apply the precedence rules to the findings and explain the result."""
    claims = collect_claims(findings)
    decisive = sorted((c for c in claims if c.decisive), key=lambda c: c.rule)
    if decisive:
        top = decisive[0]
        label, confidence, rule = top.label or "inconclusive", top.confidence, top.rule
        basis = tuple(dict.fromkeys(c.signal for c in decisive if c.label == label))
    else:
        top = None
        label, confidence, rule, basis = "inconclusive", "low", 8, ()
    stability = findings.stability
    summary: str | None = None
    if top is not None and top.signal == "detector" and stability and not stability.stable:
        failed = ", ".join(t.variant for t in stability.trials if not t.holds)
        claims.append(
            Claim(
                "detector",
                "detector.unstable",
                7,
                None,
                "low",
                False,
                f"The detector's decision did not survive ordinary re-encoding ({failed}). A "
                "decision that flips when the file is re-compressed or resized is not "
                "reliable, so it is not used.",
            )
        )
        label, confidence, rule, basis, top = "inconclusive", "low", 8, (), None
        summary = (
            "We cannot tell whether this file is genuine: a detector's score crossed its "
            "threshold, but not after ordinary re-encoding."
        )
    reasons = tuple(_reason(c, label) for c in sorted(claims, key=lambda c: c.rule))
    return Verdict(
        label=label,
        confidence=confidence,
        basis=basis,
        score=detector_score(findings.detectors),
        summary=summary or _summary(label, top, findings),
        reasons=reasons,
        rule=rule,
        stability=stability if top is None or top.signal == "detector" else None,
    )


def _reason(claim: Claim, label: Label) -> Reason:
    effect: Effect
    if claim.label is None:
        effect = "neutral"
    elif claim.label == label:
        effect = "supports"
    elif label == "inconclusive":
        effect = "neutral"
    else:
        effect = "contradicts"
    return Reason(claim.signal, claim.finding, effect, claim.detail, claim.rule)


# --- C2PA -------------------------------------------------------------------------------------


def _who(f: C2paFinding) -> str:
    if f.signer is None:
        return "an unknown signer"
    name = f.signer.organization or f.signer.common_name or "an unnamed signer"
    if f.signer.common_name and f.signer.organization and f.signer.common_name != name:
        name = f"{f.signer.common_name} ({f.signer.organization})"
    return f"“{name}”"


def _codes(codes: Iterable[str]) -> str:
    return ", ".join(codes)


def c2pa_claims(f: C2paFinding) -> Iterable[Claim]:
    """Turn a C2PA finding into claims for rules 1, 2 and 6 (and context for the rest)."""
    if f.state == "absent":
        yield Claim(
            "c2pa",
            "c2pa.absent",
            8,
            None,
            "low",
            False,
            "The file carries no Content Credentials (C2PA). Most files have none, so this "
            "says nothing either way about whether it is genuine.",
        )
        return
    if f.state == "error":
        detail = "The file's Content Credentials could not be checked"
        detail += f": {f.error}." if f.error else "."
        if f.remote_url:
            detail += f" The credentials are stored at {f.remote_url}."
        yield Claim("c2pa", "c2pa.error", 8, None, "low", False, detail)
        return

    tampered = bool(f.integrity_failures)
    if tampered:
        yield Claim(
            "c2pa",
            "c2pa.integrity_failure",
            1,
            "manipulated",
            "high",
            True,
            "The file was changed after it was signed: the Content Credentials no longer match "
            f"its contents ({_codes(f.integrity_failures)}).",
        )
    if f.credential_failures:
        problems = [c for c in f.credential_failures if c != "signingCredential.untrusted"]
        if problems:
            yield Claim(
                "c2pa",
                "c2pa.credential_problem",
                6,
                None,
                "low",
                False,
                f"The signing certificate of {_who(f)} has a problem ({_codes(problems)}). This "
                "lowers trust in who signed, but is not evidence that the content changed.",
            )
    if f.other_failures:
        yield Claim(
            "c2pa",
            "c2pa.other_failure",
            6,
            None,
            "low",
            False,
            f"Other validation failures were reported ({_codes(f.other_failures)}).",
        )
    if f.ingredient_failures:
        yield Claim(
            "c2pa",
            "c2pa.ingredient_failure",
            6,
            None,
            "low",
            False,
            "Some ingredients' own credentials did not validate "
            f"({_codes(f.ingredient_failures)}); the signer still vouched for using them.",
        )

    signed_ok = f.state in ("valid", "trusted")
    if f.ai_declared:
        where = f.ai_declarations[0].where if f.ai_declarations else "the manifest"
        kind = f.digital_source_type or "AI"
        if signed_ok and not tampered:
            trusted = f.state == "trusted"
            detail = (
                "The Content Credentials declare the content was made with an AI tool "
                f"({kind}, in {where}), "
            )
            detail += (
                f"and the signature is from a trusted signer, {_who(f)}."
                if trusted
                else f"signed by {_who(f)}, who is not on a configured trust list."
            )
            yield Claim(
                "c2pa",
                "c2pa.ai_declared",
                2,
                "ai_generated",
                "high" if trusted else "medium",
                True,
                detail,
            )
        else:
            why = "the file changed after signing" if tampered else "the manifest did not validate"
            yield Claim(
                "c2pa",
                "c2pa.ai_declared_unverified",
                2,
                None,
                "low",
                False,
                f"The Content Credentials declare AI generation ({kind}, in {where}), but "
                f"{why}, so the declaration cannot be relied on.",
            )

    if f.state == "trusted" and not tampered and not f.ai_declared:
        what = "a capture by a device" if f.capture_declared else "its history"
        yield Claim(
            "c2pa",
            "c2pa.trusted",
            6,
            "authentic",
            "high",
            True,
            f"Content Credentials signed by a trusted signer, {_who(f)}, record {what} and "
            "declare no AI generation.",
        )
    elif f.state == "valid" and not f.ai_declared:
        yield Claim(
            "c2pa",
            "c2pa.valid_untrusted",
            6,
            None,
            "low",
            False,
            f"The Content Credentials are intact and validly signed by {_who(f)}, but that "
            "signer does not chain to a configured trust anchor. Anyone can sign with a "
            "self-made certificate, so this alone does not show the file is genuine.",
        )
    elif f.state == "invalid" and not tampered and not f.ai_declared:
        yield Claim(
            "c2pa",
            "c2pa.invalid_credentials",
            6,
            None,
            "low",
            False,
            "The Content Credentials did not validate, though no sign was found that the "
            "content changed after signing.",
        )


# --- summary ----------------------------------------------------------------------------------


def _summary(label: Label, top: Claim | None, findings: Findings) -> str:
    f = findings.c2pa
    if top and top.signal == "detector" and label in ("ai_generated", "manipulated"):
        what = "AI-generated" if label == "ai_generated" else "manipulated"
        return (
            f"A statistical detector rates this image as likely {what}; no provenance signal "
            "confirms it. Detectors make mistakes: treat this as a lead, not proof."
        )
    if label == "ai_generated" and top and top.signal == "watermark":
        return (
            "An invisible watermark that Stable Diffusion software embeds in the images it "
            "generates was found in this file."
        )
    if label == "ai_generated" and top and top.signal == "metadata":
        m = findings.metadata
        name = _generator_name(m) if m else "an AI tool"
        return (
            f"The file's metadata says it was made with an AI image generator ({name}). Such "
            "metadata is easy to remove but rarely forged."
        )
    if label == "manipulated" and top and top.signal == "c2pa":
        return (
            "The file was changed after it was signed: its Content Credentials no longer match "
            "its contents."
        )
    if label == "ai_generated" and top and top.signal == "c2pa" and f is not None:
        if f.state == "trusted":
            return (
                "The file says it was made with an AI tool, and the signature is from a "
                f"trusted signer ({_who(f)})."
            )
        return (
            "The file says it was made with an AI tool; the signature is valid but the signer "
            "is not on a configured trust list."
        )
    if label == "authentic" and f is not None:
        return (
            f"The file's Content Credentials were signed by a trusted signer ({_who(f)}) and "
            "show no AI generation and no change after signing."
        )
    # inconclusive
    if f is None or f.state == "absent":
        why = "it carries no Content Credentials and no other signal gave an answer"
    elif f.state == "error":
        why = "its Content Credentials could not be checked"
    elif f.state == "valid":
        why = "its Content Credentials are validly signed, but not by a signer on a trust list"
    elif f.state == "invalid":
        why = "its Content Credentials did not validate"
    else:
        why = "no signal gave a clear answer"
    return f"We cannot tell whether this file is genuine: {why}."


# --- watermarks -------------------------------------------------------------------------------


def watermark_claims(findings: tuple[WatermarkFinding, ...]) -> Iterable[Claim]:
    """Rule 3: a generator watermark decoded above its false-positive threshold."""
    detected = [w for w in findings if w.detected]
    for w in detected:
        yield Claim(
            "watermark",
            f"watermark.{w.scheme}",
            3,
            "ai_generated",
            "high",
            True,
            f"An invisible {w.label} watermark was decoded: {w.bits_matched} of {w.bits_total} "
            f"bits match (chance probability {w.p_chance:.1e}"
            + (f", after resizing back to {w.size_tried}" if w.size_tried != "original" else "")
            + "). Stable Diffusion's reference software embeds it in every image it makes.",
        )
    if not detected and any(w.applicable for w in findings):
        yield Claim(
            "watermark",
            "watermark.none",
            3,
            None,
            "low",
            False,
            "No known generator watermark was found. This proves nothing: most generators "
            "embed none, and JPEG re-compression or cropping removes the ones that do.",
        )


# --- metadata ---------------------------------------------------------------------------------


def _generator_name(m: MetadataFinding) -> str:
    named = [s for s in m.signatures if s.name != "iptc-digital-source-type"]
    if named:
        return named[0].name
    if m.digital_source_type:
        return f"declared {m.digital_source_type}"
    return "an AI tool"


def metadata_claims(m: MetadataFinding) -> Iterable[Claim]:
    """Rule 5: generator metadata; camera and editing metadata as context."""
    if m.ai_declared and m.signatures:
        parts = []
        for sig in m.signatures[:4]:
            what = (
                sig.name if sig.name != "iptc-digital-source-type" else "IPTC digital source type"
            )
            extra = f", model {sig.model}" if sig.model else ""
            parts.append(f"{what} (in {sig.field}{extra})")
        yield Claim(
            "metadata",
            "metadata.generator",
            5,
            "ai_generated",
            "medium",
            True,
            "The file's metadata names an AI image generator: "
            + "; ".join(parts)
            + ". Metadata is easy to strip and rarely forged.",
        )
    if m.camera is not None:
        yield Claim(
            "metadata",
            "metadata.camera",
            5,
            None,
            "low",
            False,
            f"The file's EXIF names a camera ({m.camera.display}). Camera metadata is easy to "
            "copy or edit, so it does not show the picture is genuine.",
        )
    for note in m.inconsistencies:
        yield Claim("metadata", "metadata.inconsistency", 5, None, "low", False, note)


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
        if not r.applicable:
            yield Claim(
                "detector",
                f"detector.{r.name}",
                7,
                None,
                "low",
                False,
                f"The {r.name} detector did not apply: {r.notes or 'not applicable'}.",
            )
            continue
        if r.score is None or r.threshold is None:
            continue
        fpr = f"{r.threshold_fpr:.0%}" if r.threshold_fpr is not None else "an unstated"
        decides = r.threshold_fpr is not None and r.threshold_fpr <= MAX_DECIDING_FPR
        if r.above_threshold and decides:
            yield Claim(
                "detector",
                f"detector.{r.name}",
                7,
                label,
                "medium",
                True,
                f"The {r.name} detector scored {r.score:.2f}, above its threshold "
                f"{r.threshold:.2f} (chosen for a {fpr} false-positive rate on held-out real "
                "photographs).",
            )
        elif r.above_threshold:
            yield Claim(
                "detector",
                f"detector.{r.name}",
                7,
                None,
                "low",
                False,
                f"The {r.name} detector scored {r.score:.2f}, above its threshold "
                f"{r.threshold:.2f}, but that threshold was chosen for a {fpr} false-positive "
                "rate: too many real photographs score as high for the detector to decide "
                "alone. Treat it as a lead for a person to follow.",
            )
        else:
            yield Claim(
                "detector",
                f"detector.{r.name}",
                7,
                None,
                "low",
                False,
                f"The {r.name} detector scored {r.score:.2f}, below its threshold "
                f"{r.threshold:.2f}. A low score is not evidence that the image is genuine.",
            )
