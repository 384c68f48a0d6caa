"""The detector interface and its result."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from detectors.card import ModelCard
from detectors.runtime import Runtime

#: The note of a face detector, or a face-swap detector, that found no face to judge: the
#: pipeline's ``no_faces`` abstention and the verdict's wording key on it.
NO_FACES = "no faces found"


@dataclass(frozen=True)
class DetectorResult:
    """One detector's answer for one image or frame.

    ``score`` is a calibrated probability of synthetic/manipulated content (``None`` when not
    applicable); ``threshold`` is the card's decision threshold with the false-positive rate it
    was chosen for.
    """

    name: str
    version: str
    kind: str
    applicable: bool
    score: float | None = None
    threshold: float | None = None
    threshold_fpr: float | None = None
    above_threshold: bool = False
    notes: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class Pixels(Protocol):
    """A decoded image as detectors may read it (``provenance.media.DecodedImage`` is one).

    ``oriented`` is the working copy as people see it: the native pixels, or for very large
    images a reduction whose longer side is bounded; ``native_crop`` reads a region at native
    resolution for detectors whose evidence lives in pixel statistics that reduction destroys.
    """

    @property
    def oriented(self) -> np.ndarray: ...

    @property
    def native_size(self) -> tuple[int, int]: ...

    @property
    def reduced(self) -> bool: ...

    def native_crop(self, box: tuple[int, int, int, int]) -> np.ndarray: ...


class Detector(ABC):
    """A model plus the pre- and post-processing its card describes."""

    implementation: ClassVar[str]

    def __init__(self, card: ModelCard, runtime: Runtime) -> None:
        self.card = card
        self.runtime = runtime

    @abstractmethod
    def analyze_image(self, rgb: np.ndarray) -> DetectorResult:
        """Analyse one ``HxWx3`` uint8 RGB image (as people see it)."""

    def analyze_pixels(self, pixels: Pixels) -> DetectorResult:
        """Analyse a decoded still image. By default the working copy; detectors that need
        native resolution or report positions override this."""
        return self.analyze_image(pixels.oriented)

    def smoke_input(self) -> np.ndarray:
        """An image the detector must be able to process (for ``shingan models verify``)."""
        h, w = self.card.input.size
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (max(h, 64) * 2, max(w, 64) * 2, 3), dtype=np.uint8)

    def result(
        self, applicable: bool, score: float | None = None, notes: str = "", **details: Any
    ) -> DetectorResult:
        decision = self.card.decision
        above = bool(applicable and score is not None and decision and score >= decision.value)
        return DetectorResult(
            name=self.card.name,
            version=self.card.version,
            kind=self.card.task,
            applicable=applicable,
            score=None if score is None else round(float(score), 4),
            threshold=decision.value if decision else None,
            threshold_fpr=decision.false_positive_rate if decision else None,
            above_threshold=above,
            notes=notes,
            details=details,
        )
