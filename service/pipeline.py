"""``analyze(path, options) -> Report``: the only analysis path.

The API, the CLI, the UI and batch jobs all call :func:`analyze`, so a signal added here reaches
every user at once. Stages are timed individually (``timings_ms``).
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import io
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
from PIL import Image

from detectors import forensics
from detectors.base import DetectorResult
from detectors.registry import DetectorSet
from detectors.video import aggregate
from provenance import c2pa as c2pa_mod
from provenance import hashing, watermarks
from provenance.errors import ShinganError
from provenance.hashing import FrameHash, PdqHash
from provenance.media import (
    DecodedImage,
    Limits,
    MediaError,
    VideoFrames,
    decode_image,
    open_media,
    sample_video_frames,
)
from provenance.metadata import MetadataFinding, read_metadata
from provenance.trust import TrustConfig
from provenance.watermarks import WatermarkFinding
from service.abstentions import Abstention, image_abstentions
from service.banks import BankLookup, BankSet
from service.report import MediaInfo, Report, TimelineEntry
from service.verdict import (
    MAX_DECIDING_FPR,
    Findings,
    Match,
    Rule,
    Stability,
    StabilityTrial,
    fuse,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalyzeOptions:
    """Per-call settings; built once from :class:`service.config.Config` and reused."""

    trust: TrustConfig = field(default_factory=TrustConfig)
    limits: Limits = field(default_factory=Limits)
    include_thumbnails: bool = False
    detectors: DetectorSet = field(default_factory=DetectorSet)
    banks: BankLookup = field(default_factory=BankSet)
    include_forensics: bool = False
    language: str = "en"  # summary and reasons: "en" or "ja"
    video_every_s: float = 1.0
    video_max_frames: int = 64
    video_max_duration_s: float = 600.0
    stage_timeout_s: float = 120.0  # each stage's deadline; 0 for none


def shingan_version() -> str:
    try:
        return metadata.version("shingan")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


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


class _Timer:
    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round((time.perf_counter() - start) * 1000, 3)


T = TypeVar("T")


def _nearest_matches(banks: BankLookup, hashes: list[str]) -> tuple[Match, ...]:
    """Every bank entry near any of the hashes (an image's, or each video frame's), nearest
    distance per entry."""
    best: dict[tuple[str, str], Match] = {}
    for h in hashes:
        for m in banks.lookup(h):
            key = (m.bank, m.entry)
            if key not in best or m.distance < best[key].distance:
                best[key] = m
    return tuple(sorted(best.values(), key=lambda m: m.distance))


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
    rgb: np.ndarray, options: AnalyzeOptions, results: list[DetectorResult]
) -> Stability:
    """Re-score the image with each deciding detector after each variant."""
    deciding = {
        r.name
        for r in results
        if r.above_threshold and r.threshold_fpr is not None and r.threshold_fpr <= MAX_DECIDING_FPR
    }
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


class StageTimeout(ShinganError):
    """A stage outlived its deadline; its thread was left to finish on its own."""

    code = "timed_out"


_abandoned_lock = threading.Lock()
_abandoned = 0


def abandoned_stages() -> int:
    """Stages that timed out and are still running in their threads (in this process).

    The service counts them as busy analysis slots until they end, so runaway work is never
    more than the slots allow."""
    with _abandoned_lock:
        return _abandoned


def run_with_deadline(name: str, timeout_s: float, run: Callable[[], T]) -> T:
    """``run()`` in a helper thread, waiting at most ``timeout_s`` for it.

    Python cannot stop a thread that is inside a decoder or a model, so a stage that overruns
    is abandoned: the caller goes on without its result and the thread ends when the work does.

    Raises:
        StageTimeout: the deadline passed first.
        Exception: whatever ``run`` raised.
    """
    global _abandoned
    if timeout_s <= 0:
        return run()
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        global _abandoned
        try:
            box["value"] = run()
        except BaseException as exc:  # handed to the caller, or dropped if it left
            box["error"] = exc
        finally:
            with _abandoned_lock:
                done.set()
                if box.get("abandoned"):
                    _abandoned -= 1
                    log.warning("stage %s finished after its deadline", name)

    threading.Thread(target=target, name=f"shingan-stage-{name}", daemon=True).start()
    if not done.wait(timeout_s):
        with _abandoned_lock:
            if not done.is_set():
                box["abandoned"] = True
                _abandoned += 1
                raise StageTimeout(name)
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


class _Run:
    """One analysis: its timings, warnings and abstentions, and how each stage is run.

    Every stage runs under the configured deadline; an exception or an overrun in one costs
    that signal (a warning, or a ``timed_out`` abstention), never the report.
    """

    def __init__(self, options: AnalyzeOptions) -> None:
        self.options = options
        self.timer = _Timer()
        self.warnings: list[str] = []
        self.abstentions: list[Abstention] = []
        self.timed_out: set[str] = set()

    def deadline(self) -> float:
        """A monotonic time for stages that stop themselves (frame loops)."""
        return time.monotonic() + self.options.stage_timeout_s

    def overran(self, stage: str, what: str = "") -> None:
        self.timed_out.add(stage)
        self.abstentions.append(
            Abstention(
                "timed_out",
                f"the {stage} stage took longer than {self.options.stage_timeout_s:g} s and was "
                f"stopped{what}; its signal is missing",
            )
        )

    def raw(self, stage: str, run: Callable[[], T], *, grace_s: float = 0.0) -> T:
        """Timed and under the deadline; exceptions (StageTimeout among them) propagate."""
        with self.timer.stage(stage):
            return run_with_deadline(stage, self.options.stage_timeout_s + grace_s, run)

    def stage(
        self, stage: str, run: Callable[[], T], *, label: str | None = None, grace_s: float = 0.0
    ) -> T | None:
        """Timed, under the deadline, guarded: None when it failed or overran."""
        try:
            return self.raw(stage, run, grace_s=grace_s)
        except StageTimeout:
            self.overran(label or stage)
        except Exception:
            log.exception("stage %s failed", stage)
            self.warnings.append(
                f"the {label or stage} stage failed on this file; its result is missing"
            )
        return None


def _analyse_frames(
    sampled: VideoFrames, options: AnalyzeOptions, run: _Run
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
        if time.monotonic() > deadline:
            run.overran("frame analysis", f" after {len(entries)} of {len(sampled.frames)} frames")
            break
        frame_hash = _guard("video hashing", run.warnings, lambda f=rgb: hashing.pdq(f))  # type: ignore[misc]
        if frame_hash is not None:
            hashes.append(FrameHash(time_s=time_s, hash=frame_hash))
        scores: dict[str, float | None] = {}
        faces: int | None = None
        for detector in detectors:
            result = _guard(
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


def _guard(stage: str, warnings: list[str], run: Callable[[], T]) -> T | None:
    """Run one step; a bug or an unforeseen input in it costs that signal, not the report."""
    try:
        return run()
    except Exception:
        log.exception("stage %s failed", stage)
        warnings.append(f"the {stage} stage failed on this file; its result is missing")
        return None


def _verify_c2pa(media: Any, options: AnalyzeOptions) -> c2pa_mod.C2paFinding:
    with media.path.open("rb") as stream:  # opened in the stage's own thread
        return c2pa_mod.verify_c2pa(
            stream, media.mime, options.trust, include_thumbnails=options.include_thumbnails
        )


def analyze(
    path: str | os.PathLike[str],
    options: AnalyzeOptions | None = None,
    *,
    filename: str | None = None,
) -> Report:
    """Analyse one file and return its report.

    Args:
        path: the file; it is read, never modified or kept.
        options: trust, limits and output options.
        filename: the name the user gave the file, recorded (escaped by renderers) in the report.

    Raises:
        provenance.media.MediaError: the file cannot be analysed (unsupported, corrupt, too
            large); the caller turns it into a 4xx response or a CLI error.
        OSError: the file cannot be read.
    """
    options = options or AnalyzeOptions()
    run = _Run(options)
    timer, warnings, abstentions = run.timer, run.warnings, run.abstentions
    total_start = time.perf_counter()
    with timer.stage("intake"):
        media = open_media(Path(path), options.limits)
    try:
        c2pa_finding = run.raw("c2pa", lambda: _verify_c2pa(media, options))
    except StageTimeout:
        run.overran("C2PA")
        c2pa_finding = c2pa_mod.C2paFinding(
            state="error",
            error=f"verification took longer than {options.stage_timeout_s:g} s and was stopped",
        )
    metadata: MetadataFinding | None = None
    marks: tuple[WatermarkFinding, ...] = ()
    pdq: PdqHash | None = None
    frame_hashes: tuple[FrameHash, ...] = ()
    decoded: DecodedImage | None = None
    results: list[DetectorResult] = []
    timeline: tuple[TimelineEntry, ...] = ()
    forensic_maps: dict[str, str] | None = None
    for name, reason in options.detectors.disabled:
        warnings.append(f"detector {name} is disabled: {reason}")
    if media.kind == "image" and media.width is not None:
        try:
            decoded = run.raw("decode", lambda: decode_image(media, options.limits))
        except StageTimeout:
            run.overran("decode")
            metadata = MetadataFinding(error="the image took too long to decode")
        except MediaError as exc:
            # The container was readable (C2PA above); the pixels are not.
            warnings.append(f"the image data could not be decoded: {exc.message}")
            metadata = MetadataFinding(
                error="the image data could not be decoded, so its metadata was not read"
            )
    if decoded is not None:
        image = decoded
        try:
            metadata = run.stage("metadata", lambda: read_metadata(image.image))
            marks = (
                run.stage(
                    "watermarks",
                    lambda: watermarks.detect(image.stored, native_size=image.image.size),
                )
                or ()
            )

            def detect_all() -> list[DetectorResult]:
                found = []
                for detector in options.detectors.detectors:
                    result = _guard(
                        f"{detector.card.name} detector",
                        warnings,
                        lambda d=detector: d.analyze_pixels(image),  # type: ignore[misc]
                    )
                    if result is not None:
                        found.append(result)
                return found

            results = run.stage("detectors", detect_all) or []
            abstentions.extend(
                run.stage("abstentions", lambda: image_abstentions(media, image, metadata)) or ()
            )
        finally:
            # The native pixels (4 bytes a pixel in Pillow) are not needed past this point:
            # freeing them before hashing keeps one request's peak memory bounded. A stage that
            # overran may still be reading them; it keeps the image alive until it ends.
            if not run.timed_out & {"metadata", "detectors", "abstentions"}:
                decoded.image.close()
        pdq = run.stage("hashing", lambda: hashing.pdq(image.oriented))
        if options.include_forensics:
            forensic_maps = run.stage(
                "forensics", lambda: forensics.maps(image.oriented), label="forensic maps"
            )
        if pdq is not None and not pdq.reliable:
            warnings.append("the image is too flat or small for a reliable perceptual hash")
    elif media.kind == "video":
        deadline = run.deadline()
        sampled = run.stage(
            "frames",
            lambda: sample_video_frames(
                media.path,
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
            warnings.append("no video frames could be decoded")
        else:
            with timer.stage("frame_analysis"):
                frame_hashes, timeline, results = _analyse_frames(sampled, options, run)
            if sampled.truncated:
                abstentions.append(
                    Abstention(
                        "video_too_long",
                        f"video too long to cover: only the first {sampled.covered_s:.0f} s of "
                        f"{sampled.duration_s:.0f} s were analysed",
                    )
                )
            elif sampled.spacing_s and sampled.spacing_s > options.video_every_s * 1.5:
                abstentions.append(
                    Abstention(
                        "video_sparse",
                        f"long video: {len(sampled.frames)} frames analysed, one every "
                        f"{sampled.spacing_s:.1f} s",
                    )
                )
    if any(r.kind == "face_detection" and r.notes == "no faces found" for r in results):
        abstentions.append(Abstention("no_faces", "no faces found"))
    warnings.extend(a.message for a in abstentions)
    matches: tuple[Match, ...] = ()
    banks_active = options.banks.active
    if banks_active:
        with timer.stage("banks"):
            hashes = [pdq.hex] if pdq is not None else [f.hash.hex for f in frame_hashes]
            matches = _nearest_matches(options.banks, hashes)
    findings = Findings(
        c2pa=c2pa_finding,
        metadata=metadata,
        watermarks=marks if decoded is not None else None,
        detectors=tuple(results),
        matches=matches if banks_active else None,
    )
    with timer.stage("verdict"):
        verdict = fuse(findings, options.language)
    if verdict.rule == Rule.DETECTORS and decoded is not None:
        # A detector decided alone: check that the decision survives ordinary re-encoding.
        stability = run.stage(
            "stability",
            lambda: _stability(decoded.oriented, options, results),
            label="stability check",
        )
        if stability is not None:
            verdict = fuse(replace(findings, stability=stability), options.language)
    if c2pa_finding.state == "error" and c2pa_finding.remote_url:
        warnings.append("remote Content Credentials were not fetched")
    timer.ms["total"] = round((time.perf_counter() - total_start) * 1000, 3)
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
            frames_analyzed=len(timeline) if media.kind == "video" else None,
            filename=filename[:255] if filename else None,
            pdq=pdq,
            frame_hashes=frame_hashes,
        ),
        verdict=verdict,
        c2pa=c2pa_finding,
        metadata=metadata,
        watermarks=marks,
        detectors=tuple(results),
        timeline=timeline,
        forensics=forensic_maps,
        matches=matches,
        abstentions=tuple(abstentions),
        warnings=tuple(warnings),
        timings_ms=timer.ms,
        versions={**versions(), "models": options.detectors.model_versions()},
    )
