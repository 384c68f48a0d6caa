"""Detectors over video: per-frame results and one aggregate that a few odd frames cannot sway."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors.base import NO_FACES, DetectorResult


def aggregate(
    frames: Sequence[DetectorResult], times: Sequence[float] | None = None
) -> DetectorResult | None:
    """One result for a clip from per-frame results of the same detector.

    The clip's score is the median of the frames' calibrated scores, so a handful of noisy frames
    moves it little; the share of frames above the threshold and the 90th percentile are kept
    for people reading the timeline. With the frames' ``times``, the highest-scoring frame's time
    is kept too, and for a face-manipulation detector the box of the face that scored highest
    there (``max_time_s``, ``max_face_box`` in the pixels of ``max_face_frame_size``).
    """
    if not frames:
        return None
    first = frames[0]
    if first.kind == "face_detection":
        counts = [int(f.details.get("faces", 0)) for f in frames]
        with_faces = sum(1 for c in counts if c)
        return DetectorResult(
            name=first.name,
            version=first.version,
            kind=first.kind,
            applicable=True,
            notes=(f"faces in {with_faces} of {len(frames)} frames" if with_faces else NO_FACES),
            details={
                "frames": len(frames),
                "frames_with_faces": with_faces,
                "max_faces": max(counts),
            },
        )
    scored = [f.score for f in frames if f.applicable and f.score is not None]
    if not scored:
        return DetectorResult(
            name=first.name,
            version=first.version,
            kind=first.kind,
            applicable=False,
            threshold=first.threshold,
            threshold_fpr=first.threshold_fpr,
            notes=f"no frame could be scored ({first.notes or 'not applicable'})",
            details={"frames": len(frames), "frames_scored": 0},
        )
    peak: dict[str, object] = {}
    if times is not None and len(times) == len(frames):
        best = max(
            (i for i, f in enumerate(frames) if f.applicable and f.score is not None),
            key=lambda i: frames[i].score or 0.0,
        )
        peak["max_time_s"] = round(float(times[best]), 3)
        if "face_box" in frames[best].details:
            # In the pixels of the frame as analysed (frames are reduced for analysis).
            peak["max_face_box"] = frames[best].details["face_box"]
            peak["max_face_frame_size"] = frames[best].details.get("image_size")
    median = float(np.median(scored))
    above = first.threshold is not None and median >= first.threshold
    share = sum(1 for s in scored if first.threshold is not None and s >= first.threshold) / len(
        scored
    )
    return DetectorResult(
        name=first.name,
        version=first.version,
        kind=first.kind,
        applicable=True,
        score=round(median, 4),
        threshold=first.threshold,
        threshold_fpr=first.threshold_fpr,
        above_threshold=above,
        notes=f"median of {len(scored)} frames",
        details={
            "frames": len(frames),
            "frames_scored": len(scored),
            "share_above_threshold": round(share, 4),
            "p90": round(float(np.percentile(scored, 90)), 4),
            "max": round(max(scored), 4),
            **peak,
        },
    )
