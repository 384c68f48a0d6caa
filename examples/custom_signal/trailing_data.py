"""An example signal: bytes appended after a JPEG's end-of-image marker.

Data after the EOI marker (FF D9) is invisible in viewers: an editor's trailer, a second image,
or a hidden payload. It proves nothing about generation, so the signal only adds context (a
neutral reason); it never decides. docs/signals.md walks through it, and
tests/test_signals.py registers it and runs it through ``analyze``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from service.messages import M
from service.rules import Claim, Rule, claim
from service.signals.base import Inputs, SignalType

_EOI = b"\xff\xd9"
_TAIL = 1 << 20  # only the last MiB is searched: a trailer bigger than that is still reported


@dataclass(frozen=True)
class Trailer:
    """The finding: how many bytes follow the last end-of-image marker."""

    bytes_after_eoi: int


def trailing_bytes(data: bytes) -> int:
    end = data.rfind(_EOI)
    return len(data) - end - len(_EOI) if end >= 0 else 0


class TrailingData(SignalType[Trailer]):
    name = "trailing_data"  # type: ignore[assignment]  # a new name joins rules.Signal
    needs = "file"

    def find(self, inputs: Inputs) -> Trailer | None:
        if inputs.media.mime != "image/jpeg":
            return None  # did not run: no claims
        path = inputs.media.path

        def read_tail() -> Trailer:
            with path.open("rb") as fh:
                size = fh.seek(0, 2)
                fh.seek(max(0, size - _TAIL))
                return Trailer(trailing_bytes(fh.read()))

        return inputs.stage("trailing_data", read_tail)

    def claims(self, finding: Trailer) -> Iterable[Claim]:
        if finding.bytes_after_eoi > 0:
            yield claim(
                self.name,  # type: ignore[arg-type]  # (see ``name``)
                "trailing_data.present",
                Rule.GENERATOR_METADATA,
                None,  # context: argues for no label
                "low",
                False,
                M("raw", text=f"{finding.bytes_after_eoi} bytes follow the image's end marker"),
            )
