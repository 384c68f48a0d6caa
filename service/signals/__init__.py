"""The signals, registered in the order ``analyze`` runs them.

A signal is one module with a :class:`~service.signals.base.SignalType`; :func:`register` adds
it (timm's registry pattern). Built-in signals are registered here; docs/signals.md shows how to
write and register another.
"""

from __future__ import annotations

from collections.abc import Iterator

from provenance.errors import ShinganError
from service.rules import Claim
from service.signals.base import Findings, Inputs, Need, SignalType
from service.signals.c2pa import C2pa
from service.signals.detector import Detectors
from service.signals.file import FileStructure
from service.signals.known_media import KnownMedia
from service.signals.metadata import Metadata
from service.signals.watermark import Watermark

__all__ = [
    "Findings",
    "Inputs",
    "Need",
    "SignalType",
    "collect_claims",
    "register",
    "signals",
    "unregister",
]

_REGISTRY: dict[str, SignalType[object]] = {}


class DuplicateSignal(ShinganError):
    code = "duplicate_signal"


def register(signal: SignalType[object]) -> SignalType[object]:
    """Add ``signal`` (it runs after those registered before it; its name must be new)."""
    if signal.name in _REGISTRY:
        raise DuplicateSignal(f"a signal named {signal.name!r} is registered already")
    _REGISTRY[signal.name] = signal
    return signal


def unregister(name: str) -> None:
    """Remove a signal (tests and embedding applications); unknown names are ignored."""
    _REGISTRY.pop(name, None)


def signals(*needs: Need) -> Iterator[SignalType[object]]:
    """The registered signals (only those with one of ``needs``, if given), in order."""
    for signal in _REGISTRY.values():
        if not needs or signal.needs in needs:
            yield signal


def signal(name: str) -> SignalType[object]:
    return _REGISTRY[name]


def collect_claims(findings: Findings) -> list[Claim]:
    """Every registered signal's claims about its finding (signals that did not run: none)."""
    claims: list[Claim] = []
    for sig in signals():
        finding = findings.by_signal.get(sig.name)
        if finding is not None:
            claims.extend(sig.claims(finding))
    return claims


# The order analyze runs them: the file, then pixels, then what is made from pixels.
for _built_in in (FileStructure(), C2pa(), Metadata(), Watermark(), Detectors(), KnownMedia()):
    register(_built_in)  # type: ignore[arg-type]
