"""Known-media banks (PDQ matches): rule 4."""

from __future__ import annotations

from collections.abc import Iterable

from service.banks import BankLookup, Match
from service.messages import M, Msg
from service.rules import Claim, Confidence, Label, Rule, claim
from service.signals.base import Findings, Inputs, SignalType

#: PDQ distances (of 256 bits) measured in docs/measurements/hashing.md.
MATCH_SAME = 16  # every JPEG 50-90 copy, 90% of 0.5x copies
MATCH_CLOSE = 31  # no distinct pair of 90,100 came this close
MATCH_NEAR = 40  # 1 distinct pair of 90,100 came this close

Matches = tuple[Match, ...]


def nearest_matches(banks: BankLookup, hashes: list[str]) -> Matches:
    """Every bank entry near any of the hashes (an image's, or each video frame's), nearest
    distance per entry."""
    best: dict[tuple[str, str], Match] = {}
    for h in hashes:
        for m in banks.lookup(h):
            key = (m.bank, m.entry)
            if key not in best or m.distance < best[key].distance:
                best[key] = m
    return tuple(sorted(best.values(), key=lambda m: m.distance))


class KnownMedia(SignalType[Matches]):
    name = "known_media"
    needs = "hashes"

    def find(self, inputs: Inputs) -> Matches | None:
        banks = inputs.options.banks
        if not banks.active:
            return None
        hashes = inputs.hashes
        return inputs.timed("banks", lambda: nearest_matches(banks, hashes))

    def claims(self, matches: Matches) -> Iterable[Claim]:
        """Rule 4: the bank entry's label; confidence from the distance."""
        for m in sorted(matches, key=lambda m: m.distance)[:5]:
            values = {"bank": m.bank, "entry": m.entry, "label": m.label, "distance": m.distance}
            if m.distance <= MATCH_CLOSE:
                confidence: Confidence = "high" if m.distance <= MATCH_SAME else "medium"
                yield claim(
                    "known_media",
                    "known_media.match",
                    Rule.KNOWN_MEDIA,
                    m.label,
                    confidence,
                    True,
                    M("match.close", **values),
                )
            elif m.distance <= MATCH_NEAR:
                yield claim(
                    "known_media",
                    "known_media.near",
                    Rule.KNOWN_MEDIA,
                    None,
                    "low",
                    False,
                    M("match.near", **values),
                )

    def summary(self, label: Label, findings: Findings) -> Msg | None:
        matches = findings.get(self)
        if not matches:
            return None
        best = min(matches, key=lambda m: m.distance)
        return M(f"summary.match.{label}", bank=best.bank, entry=best.entry)
