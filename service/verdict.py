"""Fuse signal findings into one explained verdict. Pure: no I/O, no clock, no globals.

The precedence rules of docs/design.md are a table (:data:`service.rules.RULES`), strongest first.
Each registered signal (:mod:`service.signals`) turns its finding into *claims*: what it says,
which label it argues for (or none), how strongly, and whether it may decide on its own. The
decisive claim of the lowest-numbered rule sets the label; every claim is kept as a reason with
its effect relative to that label, so conflicts are shown rather than dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.messages import DEFAULT_LANGUAGE, M, Msg, render
from service.rules import (
    Claim,
    Confidence,
    Effect,
    Label,
    Rule,
    Signal,
    Stability,
    claim,
)
from service.signals import Findings, collect_claims, signal, signals


@dataclass(frozen=True)
class Reason:
    signal: Signal
    finding: str
    effect: Effect
    detail: str
    rule: Rule


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


_CONFIDENCE: tuple[Confidence, ...] = ("low", "medium", "high")


def _lower(a: Confidence, b: Confidence) -> bool:
    return _CONFIDENCE.index(a) < _CONFIDENCE.index(b)


def fuse(findings: Findings, lang: str = DEFAULT_LANGUAGE) -> Verdict:
    """Apply the precedence rules to the findings and explain the result in ``lang``."""
    claims = [
        _as_lead(c, findings.out_of_domain) if c.signal == "detector" and c.decisive else c
        for c in collect_claims(findings)
    ]
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
            claim(
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
    capped_by: Claim | None = None
    if label != "inconclusive":
        for c in claims:
            contradicts = c.label is not None and c.label != label
            if contradicts and c.cap is not None and _lower(c.cap, confidence):
                confidence, capped_by = c.cap, c
    reasons = tuple(_reason(c, label, lang) for c in sorted(claims, key=lambda c: c.rule))
    said = summary or _summary(label, top, findings)
    if capped_by is not None:
        said = M("summary.capped", summary=said, why=M(f"caveat.{capped_by.finding}"))
    return Verdict(
        label=label,
        confidence=confidence,
        basis=basis,
        score=_score(findings),
        summary=render(said, lang),
        reasons=reasons,
        rule=rule,
        stability=stability if top is None or top.signal == "detector" else None,
        language=lang,
    )


def _as_lead(c: Claim, out_of_domain: tuple[str, ...]) -> Claim:
    """A detector's decision on an image outside its calibration (an illustration, a
    screenshot) becomes a lead: its threshold's false-positive rate says nothing there."""
    if not out_of_domain or c.message is None:
        return c
    return claim(
        c.signal,
        c.finding,
        c.rule,
        None,
        "low",
        False,
        M("detector.out_of_domain", said=c.message, why=M(f"domain.{out_of_domain[0]}")),
    )


def _score(findings: Findings) -> float | None:
    scores = [
        s
        for sig in signals()
        if (f := findings.by_signal.get(sig.name)) is not None and (s := sig.score(f)) is not None
    ]
    return max(scores) if scores else None


def _summary(label: Label, top: Claim | None, findings: Findings) -> Msg:
    """The deciding signal's summary; otherwise why nothing decided."""
    if top is not None:
        said = signal(top.signal).summary(label, findings)
        if said is not None:
            return said
    for sig in signals():
        finding = findings.by_signal.get(sig.name)
        why = sig.inconclusive_why(finding) if finding is not None else None
        if why is not None:
            return M("summary.inconclusive", why=why)
    return M("summary.inconclusive", why=M("why.absent"))


def _reason(claim: Claim, label: Label, lang: str = DEFAULT_LANGUAGE) -> Reason:
    effect: Effect
    if claim.label is None or label == "inconclusive":
        effect = "neutral"
    elif claim.label == label:
        effect = "supports"
    else:
        effect = "contradicts"
    detail = render(claim.message, lang) if claim.message is not None else claim.detail
    return Reason(claim.signal, claim.finding, effect, detail, claim.rule)
