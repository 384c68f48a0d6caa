"""Generator metadata (PNG text, EXIF, XMP, IPTC, stealth LSB data; MP4/MOV metadata boxes):
rule 5; camera and edits as context."""

from __future__ import annotations

from collections.abc import Iterable

from provenance.metadata import MetadataFinding, read_metadata, read_video_metadata
from provenance.source_types import ALGORITHMIC_SOURCE_TYPES
from service.messages import M, Msg
from service.rules import Claim, Label, Rule, claim
from service.signals.base import Findings, Inputs, SignalType

_BMFF_VIDEO = frozenset({"video/mp4", "video/quicktime"})


def _from_video(m: MetadataFinding) -> bool:
    """Read from an MP4/MOV container (its fields are named ``QuickTime:...``)."""
    return any(key.startswith("QuickTime:") for key in m.fields)


def _generator_name(m: MetadataFinding) -> str | Msg:
    named = [s for s in m.signatures if s.name != "iptc-digital-source-type"]
    if named:
        return named[0].name
    if m.digital_source_type:
        return M("generator.declared", type=m.digital_source_type)
    return M("generator.unknown")


class Metadata(SignalType[MetadataFinding]):
    name = "metadata"
    needs = "pixels"

    def find(self, inputs: Inputs) -> MetadataFinding | None:
        media = inputs.media
        if media.kind == "video":
            # MP4/MOV: the container's own metadata (encoder, camera, XMP, generator keys);
            # bounded box walking, no decoding.
            if media.mime not in _BMFF_VIDEO:
                return None
            return inputs.stage("metadata", lambda: read_video_metadata(media.path))
        image = inputs.image
        if image is None:
            problem = inputs.image_problem
            return MetadataFinding(error=problem) if problem else None
        return inputs.stage("metadata", lambda: read_metadata(image.image))

    def claims(self, m: MetadataFinding) -> Iterable[Claim]:
        """Rule 5: generator metadata; camera and editing metadata as context."""
        if m.ai_declared and m.signatures:
            parts: list[Msg] = []
            for sig in m.signatures[:4]:
                what: str | Msg = (
                    sig.name if sig.name != "iptc-digital-source-type" else M("metadata.iptc")
                )
                if sig.model:
                    parts.append(
                        M("metadata.part.model", what=what, field=sig.field, model=sig.model)
                    )
                else:
                    parts.append(M("metadata.part", what=what, field=sig.field))
            joined = M("join." + str(len(parts)), **{f"p{i}": p for i, p in enumerate(parts)})
            yield claim(
                "metadata",
                "metadata.generator",
                Rule.GENERATOR_METADATA,
                "ai_generated",
                "medium",
                True,
                M("metadata.generator", parts=joined),
            )
        if not m.ai_declared and m.digital_source_type in ALGORITHMIC_SOURCE_TYPES:
            yield claim(
                "metadata",
                "metadata.declared_algorithmic",
                Rule.GENERATOR_METADATA,
                None,
                "low",
                False,
                M(f"metadata.declared.{m.digital_source_type}"),
            )
        if m.camera is not None:
            yield claim(
                "metadata",
                "metadata.camera",
                Rule.GENERATOR_METADATA,
                None,
                "low",
                False,
                M(
                    "metadata.camera.video" if _from_video(m) else "metadata.camera",
                    camera=m.camera.display,
                ),
            )
        for note in m.inconsistencies:
            # Written by provenance.metadata in English; shown as it is in every language.
            yield claim(
                "metadata",
                "metadata.inconsistency",
                Rule.GENERATOR_METADATA,
                None,
                "low",
                False,
                M("raw", text=note),
            )

    def summary(self, label: Label, findings: Findings) -> Msg | None:
        if label != "ai_generated":
            return None
        m = findings.get(self)
        return M("summary.metadata", name=_generator_name(m) if m else M("generator.unknown"))
