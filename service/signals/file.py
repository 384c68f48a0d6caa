"""The file's own structure: a file cut short (rule 1's context).

An interrupted download or copy changes a file as surely as an edit does, so C2PA then reports
an integrity failure. This signal never decides: it contradicts whatever was decided, caps the
confidence at medium, and says to fetch the file again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from provenance.structure import Incomplete
from service.messages import M
from service.rules import Claim, Rule, claim
from service.signals.base import Inputs, SignalType


@dataclass(frozen=True)
class Structure:
    """Where the file ends too early (None: it looks whole, or its format is not checked)."""

    incomplete: Incomplete | None


class FileStructure(SignalType[Structure]):
    name = "file"
    needs = "file"

    def find(self, inputs: Inputs) -> Structure:
        return Structure(inputs.media.incomplete)  # read at intake, with the file's hash

    def claims(self, finding: Structure) -> Iterable[Claim]:
        cut = finding.incomplete
        if cut is None:
            return
        yield claim(
            "file",
            "file.incomplete",
            Rule.C2PA_INTEGRITY,
            "inconclusive",
            "low",
            False,
            M("file.incomplete", where=M(f"file.incomplete.{cut.code}", part=cut.part)),
            cap="medium",
        )
