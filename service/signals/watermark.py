"""Invisible generator watermarks (Stable Diffusion's): rule 3."""

from __future__ import annotations

from collections.abc import Iterable

from provenance import watermarks
from provenance.watermarks import WatermarkFinding
from service.messages import M, Msg
from service.rules import Claim, Label, Rule, claim
from service.signals.base import Findings, Inputs, SignalType

Marks = tuple[WatermarkFinding, ...]


class Watermark(SignalType[Marks]):
    name = "watermark"
    needs = "pixels"

    def find(self, inputs: Inputs) -> Marks | None:
        image = inputs.image
        if image is None:
            return None
        found = inputs.stage(
            "watermarks", lambda: watermarks.detect(image.stored, native_size=image.image.size)
        )
        return found or ()

    def claims(self, findings: Marks) -> Iterable[Claim]:
        """Rule 3: a generator watermark decoded above its false-positive threshold."""
        detected = [w for w in findings if w.detected]
        for w in detected:
            resized = (
                M("watermark.resized", size=w.size_tried) if w.size_tried != "original" else ""
            )
            yield claim(
                "watermark",
                f"watermark.{w.scheme}",
                Rule.WATERMARK,
                "ai_generated",
                "high",
                True,
                M(
                    "watermark.detected",
                    label=w.label,
                    matched=w.bits_matched,
                    total=w.bits_total,
                    p=f"{w.p_chance:.1e}",
                    resized=resized,
                ),
            )
        if not detected and any(w.applicable for w in findings):
            yield claim(
                "watermark",
                "watermark.none",
                Rule.WATERMARK,
                None,
                "low",
                False,
                M("watermark.none"),
            )

    def summary(self, label: Label, findings: Findings) -> Msg | None:
        return M("summary.watermark") if label == "ai_generated" else None
