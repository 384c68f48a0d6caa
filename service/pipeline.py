"""``analyze(path, options) -> Report``: the only analysis path.

The API, the CLI, the UI and batch jobs all call :func:`analyze`, so a signal registered in
:mod:`service.signals` reaches every user at once. ``analyze`` opens the file, runs each signal
in order with the file's :class:`Inputs` (which decode the image or sample the video on first
use), fuses their claims into the verdict, and writes the report. Stages are timed individually
(``timings_ms``).
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import io
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from PIL import Image

from detectors import forensics
from detectors.base import NO_FACES, DetectorResult
from detectors.video import aggregate
from provenance import c2pa as c2pa_mod
from provenance import hashing
from provenance.c2pa import C2paFinding
from provenance.hashing import FrameHash, PdqHash
from provenance.media import (
    DecodedImage,
    Media,
    MediaError,
    VideoFrames,
    decode_image,
    open_media,
    sample_video_frames,
)
from provenance.metadata import MetadataFinding
from provenance.watermarks import WatermarkFinding
from service.abstentions import OUT_OF_DOMAIN, Abstention, image_abstentions
from service.banks import Match
from service.options import AnalyzeOptions
from service.report import MediaInfo, Report, TimelineEntry
from service.rules import Rule, Stability, StabilityTrial
from service.signals import Findings, signals
from service.signals.detector import decides
from service.stages import (
    Cancelled,
    Progress,
    Run,
    StageTimeout,
    abandoned_stages,
    guard,
    run_with_deadline,
)
from service.verdict import fuse
from service.version import shingan_version

__all__ = [
    "AnalyzeOptions",
    "StageTimeout",
    "abandoned_stages",
    "analyze",
    "run_with_deadline",
    "shingan_version",
    "versions",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


@functools.cache
def _static_versions() -> dict[str, Any]:
    """Software versions that went into a report (chain of custody)."""
    try:
        c2pa_python = metadata.version("c2pa-python")
    except metadata.PackageNotFoundError:
        c2pa_python = None
    return {
        "shingan": shingan_version(),
        "c2pa_sdk": c2pa_mod.sdk_version(),
        "c2pa_python": c2pa_python,
        "models": {},
    }


def versions() -> dict[str, Any]:
    """Software versions that went into a report (chain of custody)."""
    return copy.deepcopy(_static_versions())


#: Realistic re-encodings a detector-only decision must survive.
STABILITY_VARIANTS = ("jpeg85", "jpeg70", "resize0.75")


def _variant(rgb: np.ndarray, name: str) -> np.ndarray:
    if name.startswith("jpeg"):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=int(name[4:]))
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    factor = float(name.removeprefix("resize"))
    h, w = rgb.shape[:2]
    return cv2.resize(
        rgb, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA
    )


def _stability(
    rgb: np.ndarray, options: AnalyzeOptions, results: tuple[DetectorResult, ...]
) -> Stability:
    """Re-score the image with each deciding detector after each variant."""
    deciding = {r.name for r in results if decides(r)}
    detectors = [d for d in options.detectors.detectors if d.card.name in deciding]
    trials = []
    for name in STABILITY_VARIANTS:
        image = _variant(rgb, name)
        rescored = [d.analyze_image(image) for d in detectors]
        trials.append(
            StabilityTrial(
                variant=name,
                scores={r.name: r.score for r in rescored},
                holds=all(r.above_threshold for r in rescored),
            )
        )
    return Stability(tuple(trials))


def _analyse_frames(
    sampled: VideoFrames, options: AnalyzeOptions, run: Run, progress: Progress | None = None
) -> tuple[tuple[FrameHash, ...], tuple[TimelineEntry, ...], list[DetectorResult]]:
    """PDQ and image detectors on each sampled frame; detectors aggregated over the clip.

    The frames are analysed one after another until the stage's deadline; frames past it are
    left out (a ``timed_out`` abstention says how many were analysed)."""
    detectors = options.detectors.detectors
    per_detector: dict[str, list[DetectorResult]] = {d.card.name: [] for d in detectors}
    per_detector_times: dict[str, list[float]] = {d.card.name: [] for d in detectors}
    hashes: list[FrameHash] = []
    entries: list[TimelineEntry] = []
    deadline = run.deadline()
    for time_s, rgb in sampled.frames:
        if progress is not None:
            if progress.cancelled():
                raise Cancelled("the analysis was cancelled")
            progress.frames(len(entries), len(sampled.frames))
        if time.monotonic() > deadline:
            run.overran("frame analysis", f" after {len(entries)} of {len(sampled.frames)} frames")
            break
        frame_hash = guard("video hashing", run.warnings, lambda f=rgb: hashing.pdq(f))  # type: ignore[misc]
        if frame_hash is not None:
            hashes.append(FrameHash(time_s=time_s, hash=frame_hash))
        scores: dict[str, float | None] = {}
        faces: int | None = None
        for detector in detectors:
            result = guard(
                f"{detector.card.name} detector",
                run.warnings,
                lambda d=detector, f=rgb: d.analyze_image(f),  # type: ignore[misc]
            )
            if result is None:
                continue
            per_detector[detector.card.name].append(result)
            per_detector_times[detector.card.name].append(time_s)
            if result.kind == "face_detection":
                faces = (faces or 0) + int(result.details.get("faces", 0))
            else:
                scores[detector.card.name] = result.score
        entries.append(TimelineEntry(time_s=time_s, pdq=frame_hash, scores=scores, faces=faces))
    aggregated = (aggregate(v, per_detector_times[k]) for k, v in per_detector.items())
    results = [r for r in aggregated if r is not None]
    return tuple(hashes), tuple(entries), results


class _Inputs:
    """The file as signals see it (:class:`service.signals.Inputs`): pixels and hashes are made
    on first use, each in its own timed, guarded stage."""

    def __init__(
        self,
        media: Media,
        run: Run,
        manifest: bytes | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.media = media
        self.manifest = manifest
        self.progress = progress
        self.run = run
        self.options = run.options
        self._decoded = False
        self._image: DecodedImage | None = None
        self.image_problem: str | None = None
        self.pdq: PdqHash | None = None
        self.frame_hashes: tuple[FrameHash, ...] = ()
        self.timeline: tuple[TimelineEntry, ...] = ()
        self._frame_results: list[DetectorResult] | None = None
        self._sampled = False

    @property
    def image(self) -> DecodedImage | None:
        if not self._decoded and self.media.kind == "image" and self.media.width is not None:
            self._decoded = True
            try:
                self._image = self.run.raw(
                    "decode", lambda: decode_image(self.media, self.options.limits)
                )
            except StageTimeout:
                self.run.overran("decode")
                self.image_problem = "the image took too long to decode"
            except MediaError as exc:
                # The container was readable (C2PA ran); the pixels are not.
                self.run.warnings.append(f"the image data could not be decoded: {exc.message}")
                self.image_problem = (
                    "the image data could not be decoded, so its metadata was not read"
                )
        return self._image

    @property
    def frame_results(self) -> list[DetectorResult] | None:
        if self.media.kind == "video" and not self._sampled:
            self._sampled = True
            self._analyse_video()
        return self._frame_results

    @property
    def hashes(self) -> list[str]:
        if self.pdq is not None:
            return [self.pdq.hex]
        return [f.hash.hex for f in self.frame_hashes]

    def stage(self, stage: str, run: Callable[[], T], *, label: str | None = None) -> T | None:
        return self.run.stage(stage, run, label=label)

    def raw(self, stage: str, run: Callable[[], T]) -> T:
        return self.run.raw(stage, run)

    def timed(self, stage: str, run: Callable[[], T]) -> T:
        with self.run.timer.stage(stage):
            return run()

    def overran(self, stage: str, what: str = "") -> None:
        self.run.overran(stage, what)

    def guard(self, what: str, run: Callable[[], T]) -> T | None:
        return guard(what, self.run.warnings, run)

    def finish_pixels(self, found: dict[str, Any]) -> dict[str, str] | None:
        """After the signals that read pixels: abstentions, the perceptual hash and (when asked)
        the forensic maps; returns the maps. A video is sampled here if no signal asked."""
        run, options = self.run, self.options
        if self.media.kind == "video":
            _ = self.frame_results
            return None
        image = self.image  # decoded here if no signal needed the pixels
        if image is None:
            return None
        metadata: MetadataFinding | None = found.get("metadata")
        try:
            run.abstentions.extend(
                run.stage("abstentions", lambda: image_abstentions(self.media, image, metadata))
                or ()
            )
        finally:
            # The native pixels (4 bytes a pixel in Pillow) are not needed past this point:
            # freeing them before hashing keeps one request's peak memory bounded. A stage that
            # overran may still be reading them; it keeps the image alive until it ends.
            if not run.timed_out & {"metadata", "detectors", "abstentions"}:
                image.image.close()
        self.pdq = run.stage("hashing", lambda: hashing.pdq(image.oriented))
        maps = None
        if options.include_forensics:
            maps = run.stage(
                "forensics", lambda: forensics.maps(image.oriented), label="forensic maps"
            )
        if self.pdq is not None and not self.pdq.reliable:
            run.warnings.append("the image is too flat or small for a reliable perceptual hash")
        return maps

    def _analyse_video(self) -> None:
        run, options = self.run, self.options
        deadline = run.deadline()
        sampled = run.stage(
            "frames",
            lambda: sample_video_frames(
                self.media.path,
                every_s=options.video_every_s,
                max_frames=options.video_max_frames,
                max_duration_s=options.video_max_duration_s,
                deadline=deadline,
            ),
            label="frame sampling",
            grace_s=10.0,  # it stops itself at the deadline; the thread's limit catches hangs
        )
        if sampled is not None and sampled.timed_out:
            run.overran("frame sampling", f" after {len(sampled.frames)} frames")
        if sampled is None or not sampled.frames:
            run.warnings.append("no video frames could be decoded")
            self._frame_results = []
            return
        with run.timer.stage("frame_analysis"):
            self.frame_hashes, self.timeline, self._frame_results = _analyse_frames(
                sampled, options, run, self.progress
            )
        if self.progress is not None:
            self.progress.frames(len(self.timeline), len(sampled.frames))
        if sampled.truncated:
            run.abstentions.append(
                Abstention(
                    "video_too_long",
                    f"video too long to cover: only the first {sampled.covered_s:.0f} s of "
                    f"{sampled.duration_s:.0f} s were analysed",
                )
            )
        elif sampled.spacing_s and sampled.spacing_s > options.video_every_s * 1.5:
            run.abstentions.append(
                Abstention(
                    "video_sparse",
                    f"long video: {len(sampled.frames)} frames analysed, one every "
                    f"{sampled.spacing_s:.1f} s",
                )
            )


def analyze(
    path: str | os.PathLike[str],
    options: AnalyzeOptions | None = None,
    *,
    filename: str | None = None,
    manifest: bytes | None = None,
    progress: Progress | None = None,
) -> Report:
    """Analyse one file and return its report.

    Args:
        path: the file; it is read, never modified or kept.
        options: trust, limits and output options.
        filename: the name the user gave the file, recorded (escaped by renderers) in the report.
        manifest: a sidecar C2PA manifest store (a ``.c2pa`` file's bytes) to validate the
            file against (see :func:`provenance.c2pa.read_sidecar`).
        progress: told of frames analysed; asked between signals and frames whether to stop.

    Raises:
        provenance.media.MediaError: the file cannot be analysed (unsupported, corrupt, too
            large); the caller turns it into a 4xx response or a CLI error.
        OSError: the file cannot be read.
        service.stages.Cancelled: ``progress`` asked to stop.
    """
    options = options or AnalyzeOptions()
    run = Run(options)
    total_start = time.perf_counter()
    with run.timer.stage("intake"):
        media = open_media(Path(path), options.limits)
    inputs = _Inputs(media, run, manifest, progress)
    for name, reason in options.detectors.disabled:
        run.warnings.append(f"detector {name} is disabled: {reason}")
    found: dict[str, Any] = {}
    try:
        for sig in signals("file", "pixels"):
            if progress is not None and progress.cancelled():
                raise Cancelled("the analysis was cancelled")
            found[sig.name] = sig.find(inputs)
    finally:
        forensic_maps = inputs.finish_pixels(found)
    for sig in signals("hashes"):
        found[sig.name] = sig.find(inputs)

    results: tuple[DetectorResult, ...] = found.get("detector") or ()
    if any(r.kind == "face_detection" and r.notes == NO_FACES for r in results):
        run.abstentions.append(Abstention("no_faces", NO_FACES))
    # "No faces" is the face detectors not applying, not a problem with the file: it stays a
    # typed abstention (for routing) and is no warning on a landscape.
    run.warnings.extend(a.message for a in run.abstentions if a.code != "no_faces")
    findings = Findings(
        found, out_of_domain=tuple(a.code for a in run.abstentions if a.code in OUT_OF_DOMAIN)
    )
    with run.timer.stage("verdict"):
        verdict = fuse(findings, options.language)
    image = inputs.image if media.kind == "image" else None
    if verdict.rule == Rule.DETECTORS and image is not None:
        # A detector decided alone: check that the decision survives ordinary re-encoding.
        stability = run.stage(
            "stability",
            lambda: _stability(image.oriented, options, results),
            label="stability check",
        )
        if stability is not None:
            verdict = fuse(replace(findings, stability=stability), options.language)
    c2pa_finding: C2paFinding = found["c2pa"]
    if c2pa_finding.state == "error" and c2pa_finding.remote_url:
        run.warnings.append("remote Content Credentials were not fetched")
    run.timer.ms["total"] = round((time.perf_counter() - total_start) * 1000, 3)
    marks: tuple[WatermarkFinding, ...] = found.get("watermark") or ()
    matches: tuple[Match, ...] = found.get("known_media") or ()
    return Report(
        id=uuid.uuid4().hex,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        media=MediaInfo(
            sha256=media.sha256,
            bytes=media.size,
            mime=media.mime,
            kind=media.kind,
            width=media.width,
            height=media.height,
            duration_s=media.duration_s,
            frames_analyzed=len(inputs.timeline) if media.kind == "video" else None,
            filename=filename[:255] if filename else None,
            pdq=inputs.pdq,
            frame_hashes=inputs.frame_hashes,
            incomplete=media.incomplete.describe() if media.incomplete else None,
        ),
        verdict=verdict,
        c2pa=c2pa_finding,
        metadata=found.get("metadata"),
        watermarks=marks,
        detectors=results,
        timeline=inputs.timeline,
        forensics=forensic_maps,
        matches=matches,
        abstentions=tuple(run.abstentions),
        warnings=tuple(run.warnings),
        timings_ms=run.timer.ms,
        versions={**versions(), "models": options.detectors.model_versions()},
    )
