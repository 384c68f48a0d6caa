"""What a signal is: it declares what it needs, finds, and says what its finding means.

In the spirit of python-threatexchange's signal types: a :class:`SignalType` reads one kind of
evidence (``find``) and turns its finding into claims for the verdict rules (``claims``).
:func:`service.pipeline.analyze` runs every registered signal in order, giving each the
:class:`Inputs` of the file; :func:`service.verdict.fuse` collects their claims. docs/signals.md
shows how to add one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

from detectors.base import DetectorResult
from provenance.media import DecodedImage, Media
from service.messages import Msg
from service.options import AnalyzeOptions
from service.rules import Claim, Label, Signal, Stability

F = TypeVar("F")
T = TypeVar("T")

#: What a signal reads: the file itself, its decoded pixels (an image, or a video's sampled
#: frames), or the perceptual hashes made from them.
Need = Literal["file", "pixels", "hashes"]


class Inputs(Protocol):
    """One file as signals see it; ``analyze`` provides it and decodes on first use."""

    @property
    def media(self) -> Media: ...

    @property
    def options(self) -> AnalyzeOptions: ...

    @property
    def manifest(self) -> bytes | None:
        """A sidecar manifest store given with the file, to validate it against."""

    @property
    def image(self) -> DecodedImage | None:
        """The decoded image (None for other kinds, or when decoding failed)."""

    @property
    def image_problem(self) -> str | None:
        """Why an image has no decoded pixels, when it has none."""

    @property
    def frame_results(self) -> list[DetectorResult] | None:
        """A video's detector results, aggregated over its sampled frames."""

    @property
    def hashes(self) -> list[str]:
        """PDQ hashes (hex) of the image, or of each sampled video frame."""

    def stage(self, stage: str, run: Callable[[], T], *, label: str | None = None) -> T | None:
        """``run()`` timed, under the deadline, guarded: None when it failed or overran."""

    def raw(self, stage: str, run: Callable[[], T]) -> T:
        """``run()`` timed and under the deadline; exceptions (StageTimeout too) propagate."""

    def timed(self, stage: str, run: Callable[[], T]) -> T:
        """``run()`` timed only: no deadline, exceptions propagate."""

    def overran(self, stage: str, what: str = "") -> None:
        """Record that ``stage`` was stopped at its deadline (a ``timed_out`` abstention)."""

    def guard(self, what: str, run: Callable[[], T]) -> T | None:
        """``run()`` guarded (no timing): a failure costs this result, with a warning."""


class SignalType(ABC, Generic[F]):
    """One kind of evidence. ``F`` is its typed finding; ``None`` means it did not run."""

    #: The name reasons and the verdict's ``basis`` give; also the key of its finding.
    name: ClassVar[Signal]
    needs: ClassVar[Need]

    @abstractmethod
    def find(self, inputs: Inputs) -> F | None:
        """Read the evidence. Runs its work through ``inputs.stage`` so it is timed and guarded."""

    @abstractmethod
    def claims(self, finding: F) -> Iterable[Claim]:
        """What the finding says, as claims citing the rules (:data:`service.rules.RULES`)."""

    def summary(self, label: Label, findings: Findings) -> Msg | None:
        """The verdict's one-line summary when this signal decided ``label`` (None: generic)."""
        return None

    def inconclusive_why(self, finding: F) -> Msg | None:
        """Why nothing decided, as this signal sees it (None: no opinion)."""
        return None

    def score(self, finding: F) -> float | None:
        """A probability the verdict reports as its ``score`` (detectors give one)."""
        return None


@dataclass(frozen=True)
class Findings:
    """Every signal's finding by signal name (absent or ``None``: it did not run), and the
    stability check of a detector-only decision."""

    by_signal: Mapping[str, Any] = field(default_factory=dict)
    stability: Stability | None = None
    #: Abstention codes that put the image outside the detectors' calibration (photographs).
    out_of_domain: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        *,
        stability: Stability | None = None,
        out_of_domain: tuple[str, ...] = (),
        **by_signal: object,
    ) -> Findings:
        """``Findings.of(c2pa=..., watermark=...)``: findings by signal name."""
        return cls(by_signal, stability, out_of_domain)

    def get(self, signal: SignalType[F]) -> F | None:
        """``signal``'s finding, typed."""
        finding: F | None = self.by_signal.get(signal.name)
        return finding
