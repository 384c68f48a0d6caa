"""The verdict's vocabulary and its precedence rules, as one table.

docs/design.md's rules, strongest first, are the rows of :data:`RULES`. Each row names the claims
(``finding`` ids) that may cite it, so the table says which signal can decide under which rule;
:func:`claim` refuses a claim that cites a rule whose row does not name it. A signal
(:mod:`service.signals`) turns its finding into claims; :func:`service.verdict.fuse` lets the
decisive claim of the lowest-numbered rule set the label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from fnmatch import fnmatchcase
from typing import Literal

from provenance.errors import ShinganError
from service.messages import Msg, render

Label = Literal["authentic", "ai_generated", "manipulated", "inconclusive"]
#: What a known-media bank may say its items are: every label but ``inconclusive``.
BANK_LABELS: tuple[Label, ...] = ("authentic", "ai_generated", "manipulated")
Confidence = Literal["high", "medium", "low"]
Effect = Literal["supports", "contradicts", "neutral"]
Signal = Literal["file", "c2pa", "watermark", "metadata", "known_media", "detector"]


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
        return RULES[self].description


@dataclass(frozen=True)
class RuleRow:
    """One rule: what it means, and the claims (``finding`` ids, ``*`` wildcards) citing it."""

    rule: Rule
    description: str
    claims: tuple[str, ...]

    def names(self, finding: str) -> bool:
        return any(fnmatchcase(finding, pattern) for pattern in self.claims)


_ROWS = (
    RuleRow(
        Rule.C2PA_INTEGRITY,
        "C2PA integrity failure: the file changed after it was signed",
        ("c2pa.integrity_failure", "c2pa.ingredient_altered", "file.incomplete"),
    ),
    RuleRow(
        Rule.C2PA_AI_DECLARED,
        "AI generation declared in a valid C2PA manifest",
        ("c2pa.ai_declared", "c2pa.ai_declared_unverified", "c2pa.declared_algorithmic"),
    ),
    RuleRow(
        Rule.WATERMARK,
        "a generator watermark decoded above its false-positive threshold",
        ("watermark.*",),
    ),
    RuleRow(
        Rule.KNOWN_MEDIA,
        "a close match in a known-media bank",
        ("known_media.match", "known_media.near"),
    ),
    RuleRow(
        Rule.GENERATOR_METADATA,
        "generator metadata in the file",
        (
            "metadata.generator",
            "metadata.declared_algorithmic",
            "metadata.camera",
            "metadata.inconsistency",
        ),
    ),
    RuleRow(
        Rule.C2PA_TRUSTED_CAPTURE,
        "trusted C2PA provenance with none of the above",
        (
            "c2pa.trusted",
            "c2pa.valid_untrusted",
            "c2pa.invalid_credentials",
            "c2pa.credential_problem",
            "c2pa.other_failure",
            "c2pa.ingredient_failure",
        ),
    ),
    RuleRow(
        Rule.DETECTORS,
        "statistical detectors above a calibrated threshold",
        ("detector.*",),
    ),
    RuleRow(Rule.DEFAULT, "nothing conclusive", ("c2pa.absent", "c2pa.error")),
)

#: Every rule's row, strongest first. Claims cite them.
RULES: dict[Rule, RuleRow] = {row.rule: row for row in _ROWS}


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


class UnlistedClaim(ShinganError):
    """A signal made a claim its rule's row does not name (a programming error)."""

    code = "unlisted_claim"


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
    #: The most confidence a verdict this claim contradicts may keep (an altered ingredient
    #: under a trusted manifest: the history it brings is unverified).
    cap: Confidence | None = None


def claim(
    signal: Signal,
    finding: str,
    rule: Rule,
    label: Label | None,
    confidence: Confidence,
    decisive: bool,
    message: Msg,
    *,
    cap: Confidence | None = None,
) -> Claim:
    """A claim, checked against the rule table."""
    if not RULES[rule].names(finding):
        raise UnlistedClaim(f"{finding} cites rule {int(rule)}, whose row does not name it")
    return Claim(
        signal, finding, rule, label, confidence, decisive, render(message), message, cap=cap
    )
