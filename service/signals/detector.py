"""Pixel detectors (ONNX models with cards): rule 7, and leads below it."""

from __future__ import annotations

from collections.abc import Iterable

from detectors.base import NO_FACES, DetectorResult
from service.messages import M, Msg
from service.rules import Claim, Confidence, Label, Rule, claim
from service.signals.base import Findings, Inputs, SignalType

#: Only thresholds chosen for at most this false-positive rate let a detector decide a label.
MAX_DECIDING_FPR = 0.01

_DETECTOR_LABELS: dict[str, Label] = {
    "synthetic_image": "ai_generated",
    "image_manipulation": "manipulated",
    "face_manipulation": "manipulated",
}

Results = tuple[DetectorResult, ...]


def decides(r: DetectorResult) -> bool:
    """Above a threshold chosen for at most :data:`MAX_DECIDING_FPR` false positives."""
    return r.above_threshold and r.threshold_fpr is not None and r.threshold_fpr <= MAX_DECIDING_FPR


def detector_score(results: Results | None) -> float | None:
    """The verdict's ``score``: the highest calibrated score of the applicable detectors."""
    scores = [r.score for r in results or () if r.applicable and r.score is not None]
    return max(scores) if scores else None


class Detectors(SignalType[Results]):
    name = "detector"
    needs = "pixels"

    def find(self, inputs: Inputs) -> Results:
        image = inputs.image
        if image is None:
            return tuple(inputs.frame_results or ())
        detectors = inputs.options.detectors.detectors

        def detect_all() -> list[DetectorResult]:
            found = []
            for detector in detectors:
                result = inputs.guard(
                    f"{detector.card.name} detector",
                    lambda d=detector: d.analyze_pixels(image),  # type: ignore[misc]
                )
                if result is not None:
                    found.append(result)
            return found

        return tuple(inputs.stage("detectors", detect_all) or ())

    def claims(self, results: Results) -> Iterable[Claim]:
        """Rule 7: calibrated detectors above thresholds chosen for a stated false-positive rate.

        A detector decides (``medium``, never ``high``) only with a threshold chosen for at most
        :data:`MAX_DECIDING_FPR` false positives; above a looser threshold its score is a lead
        shown to people, not a label. A detector below its threshold is never evidence of
        authenticity.
        """
        for r in results:
            label = _DETECTOR_LABELS.get(r.kind)
            if label is None:
                continue
            finding = f"detector.{r.name}"
            if not r.applicable:
                if NO_FACES in r.notes:  # face detectors on a faceless image or clip
                    msg = M("detector.no_faces", name=r.name)
                else:
                    msg = M("detector.not_applicable", name=r.name, notes=r.notes or "-")
                yield claim("detector", finding, Rule.DETECTORS, None, "low", False, msg)
                continue
            if r.score is None or r.threshold is None:
                continue
            fpr = f"{r.threshold_fpr:.0%}" if r.threshold_fpr is not None else "?"
            values = {"name": r.name, "score": f"{r.score:.2f}", "threshold": f"{r.threshold:.2f}"}
            argues: Label | None
            confidence: Confidence
            if decides(r):
                argues, confidence, msg = label, "medium", M("detector.decides", fpr=fpr, **values)
            elif r.above_threshold:
                argues, confidence, msg = None, "low", M("detector.lead", fpr=fpr, **values)
            else:
                argues, confidence, msg = None, "low", M("detector.below", **values)
            yield claim(
                "detector", finding, Rule.DETECTORS, argues, confidence, argues is not None, msg
            )

    def summary(self, label: Label, findings: Findings) -> Msg | None:
        if label in ("ai_generated", "manipulated"):
            return M(f"summary.detector.{label}")
        return None

    def score(self, results: Results) -> float | None:
        return detector_score(results)
