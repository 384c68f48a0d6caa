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
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar, cast

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
    VideoReader,
    decode_image,
    open_media,
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
    Helper,
    Pending,
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


class _FrameAnalysis:
    """PDQ and the image detectors on each sampled frame, in time order; the detectors'
    results aggregated over the clip by :meth:`finish`."""

    def __init__(self, options: AnalyzeOptions, run: Run) -> None:
        self.detectors = options.detectors.detectors
        self.run = run
        self.per_detector: dict[str, list[DetectorResult]] = {
            d.card.name: [] for d in self.detectors
        }
        self.per_detector_times: dict[str, list[float]] = {d.card.name: [] for d in self.detectors}
        self.hashes: list[FrameHash] = []
        self.entries: list[TimelineEntry] = []
        self.busy_s = 0.0  # time spent running the detectors
        self.hash_s = 0.0  # time spent hashing (in the frame reader's thread)

    def hash(self, rgb: np.ndarray) -> PdqHash | None:
        """The frame's PDQ (called by the frame reader's thread, beside the models)."""
        started = time.perf_counter()
        frame_hash = guard("video hashing", self.run.warnings, lambda: hashing.pdq(rgb))
        self.hash_s += time.perf_counter() - started
        return frame_hash

    def compute(self, rgb: np.ndarray) -> tuple[list[tuple[str, DetectorResult]], float]:
        """Every detector on one frame, with the time it took. Thread-safe: frames are computed
        :data:`FRAME_WORKERS` at a time and recorded in time order by :meth:`record`."""
        started = time.perf_counter()
        rgb.flags.writeable = False  # read by every detector, written by none (as images)
        results = []
        for detector in self.detectors:
            result = guard(
                f"{detector.card.name} detector",
                self.run.warnings,
                lambda d=detector: d.analyze_image(rgb),  # type: ignore[misc]
            )
            if result is not None:
                results.append((detector.card.name, result))
        return results, time.perf_counter() - started

    def record(
        self,
        time_s: float,
        frame_hash: PdqHash | None,
        results: list[tuple[str, DetectorResult]],
        busy_s: float,
    ) -> None:
        """A frame's hash and :meth:`compute`'s results, frames in time order."""
        if frame_hash is not None:
            self.hashes.append(FrameHash(time_s=time_s, hash=frame_hash))
        scores: dict[str, float | None] = {}
        faces: int | None = None
        for name, result in results:
            self.per_detector[name].append(result)
            self.per_detector_times[name].append(time_s)
            if result.kind == "face_detection":
                faces = (faces or 0) + int(result.details.get("faces", 0))
            else:
                scores[name] = result.score
        self.entries.append(
            TimelineEntry(time_s=time_s, pdq=frame_hash, scores=scores, faces=faces)
        )
        self.busy_s += busy_s

    def finish(
        self,
    ) -> tuple[tuple[FrameHash, ...], tuple[TimelineEntry, ...], list[DetectorResult]]:
        aggregated = (
            aggregate(v, self.per_detector_times[k]) for k, v in self.per_detector.items()
        )
        results = [r for r in aggregated if r is not None]
        return tuple(self.hashes), tuple(self.entries), results


_END = object()


class _FrameFeed:
    """A :class:`VideoReader`'s frames, read in a helper thread at most ``ahead`` frames ahead
    of the analysis: decoding overlaps the models, and memory holds a few frames at a time
    rather than every sampled frame. Each frame comes with ``prepare``'s answer for it (its
    PDQ, computed in the reader's thread while the models run on the previous frame). The first
    item is the reader itself (its plan), the last :data:`_END`."""

    def __init__(
        self,
        open_reader: Callable[[], VideoReader],
        prepare: Callable[[np.ndarray], object],
        ahead: int = 2,
    ) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self.error: Exception | None = None
        self.sent = 0  # frames handed over
        self._prepare = prepare
        self._helper = Helper("frames", lambda: self._read(open_reader))

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _read(self, open_reader: Callable[[], VideoReader]) -> None:
        try:
            with open_reader() as reader:
                if not self._put(reader):
                    return
                for time_s, rgb in reader.frames():
                    if not self._put((time_s, rgb, self._prepare(rgb))):
                        return
                    self.sent += 1
        except Exception as exc:  # a decoder's failure costs the frames, not the report
            log.exception("frame sampling failed")
            self.error = exc
        finally:
            self._put(_END)

    def get(self, until: float | None) -> object:
        """The next item; raises :class:`StageTimeout` when none came by ``until`` (the reader
        is stuck in the decoder)."""
        while True:
            wait = 0.5 if until is None else min(0.5, until - time.monotonic())
            if wait <= 0:
                raise StageTimeout("frames")
            try:
                return self._queue.get(timeout=wait)
            except queue.Empty:
                continue

    def stop(self) -> None:
        """Stop reading; a reader stuck in the decoder is left to end on its own (counted
        among the abandoned stages until it does)."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if not self._helper.join(1.0):
            self._helper.abandon()


#: Frames analysed at once. The models leave part of a core idle on one frame (the face
#: cascade's many small runs, Python between them); two frames at a time keep both cores of
#: the reference machine busy. Each frame's results are the same either way (recorded in time
#: order).
FRAME_WORKERS = 2

#: How long past the sampling deadline a reader that stops itself there may take to do so
#: before it is taken for hung.
SAMPLING_GRACE_S = 10.0


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
        self._decoding: Pending[DecodedImage] | None = None
        self._image: DecodedImage | None = None
        self.image_problem: str | None = None
        self.pdq: PdqHash | None = None
        self._pdq_pending: Pending[PdqHash] | None = None
        self.frame_hashes: tuple[FrameHash, ...] = ()
        self.timeline: tuple[TimelineEntry, ...] = ()
        self._frame_results: list[DetectorResult] | None = None
        self._sampled = False

    def _decodable(self) -> bool:
        return self.media.kind == "image" and self.media.width is not None

    def start_decoding(self) -> None:
        """Begin decoding an image now, in its own thread, beside the C2PA stage that comes
        first (every image is decoded: :meth:`finish_pixels` needs it). Errors and overruns
        come out where :attr:`image` is first read, as if it had decoded then."""
        if self._decodable() and self._decoding is None and not self._decoded:
            media, limits = self.media, self.options.limits
            self._decoding = self.run.start("decode", lambda: decode_image(media, limits))

    @property
    def image(self) -> DecodedImage | None:
        if not self._decoded and self._decodable():
            self._decoded = True
            decoding = self._decoding
            try:
                image = self._image = (
                    decoding.value()
                    if decoding is not None
                    else self.run.raw(
                        "decode", lambda: decode_image(self.media, self.options.limits)
                    )
                )
                # The perceptual hash needs nothing but these pixels: it runs beside the
                # signals that follow (NumPy and OpenCV release the interpreter lock).
                self._pdq_pending = self.run.start("hashing", lambda: hashing.pdq(image.oriented))
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
        self.pdq = self._pdq_pending.result() if self._pdq_pending is not None else None
        maps = None
        if options.include_forensics:
            maps = run.stage(
                "forensics", lambda: forensics.maps(image.oriented), label="forensic maps"
            )
        if self.pdq is not None and not self.pdq.reliable:
            run.warnings.append("the image is too flat or small for a reliable perceptual hash")
        return maps

    def _analyse_video(self) -> None:
        """Frames are read (:class:`VideoReader`, in a helper thread) while the previous ones
        are analysed, :data:`FRAME_WORKERS` at a time. ``timings_ms``: ``frames`` is the time
        spent reading frames, ``frame_analysis`` the time spent analysing them, summed over
        the frames analysed at once (the two overlap), ``video`` the wall time of both. The
        reading stops at the stage deadline, the analysis at twice it (each had its own
        deadline when one came after the other)."""
        run, options = self.run, self.options
        limit = options.stage_timeout_s
        now = time.monotonic()
        sampling_deadline = now + limit if limit > 0 else None
        analysis_deadline = now + 2 * limit if limit > 0 else None
        hung_at = sampling_deadline + SAMPLING_GRACE_S if sampling_deadline is not None else None
        path = self.media.path
        analysis = _FrameAnalysis(options, run)
        feed = _FrameFeed(
            lambda: VideoReader(
                path,
                every_s=options.video_every_s,
                max_frames=options.video_max_frames,
                max_duration_s=options.video_max_duration_s,
                deadline=sampling_deadline,
            ),
            analysis.hash,
        )
        progress = self.progress
        reader: VideoReader | None = None
        received = 0
        workers = ThreadPoolExecutor(FRAME_WORKERS, thread_name_prefix="shingan-frame")
        in_flight: deque[tuple[float, PdqHash | None, Future[Any]]] = deque()
        started = time.perf_counter()
        try:
            first = feed.get(hung_at)
            if first is not _END:
                reader = cast(VideoReader, first)
                planned = len(reader.indices)
                while True:
                    if progress is not None:
                        if progress.cancelled():
                            raise Cancelled("the analysis was cancelled")
                        progress.frames(len(analysis.entries), planned)
                    item = feed.get(hung_at)
                    if item is _END:
                        break
                    received += 1
                    if analysis_deadline is not None and time.monotonic() > analysis_deadline:
                        run.overran(
                            "frame analysis",
                            f" after {len(analysis.entries)} of {planned} frames",
                        )
                        break
                    time_s, rgb, frame_hash = cast(tuple[float, np.ndarray, PdqHash | None], item)
                    in_flight.append((time_s, frame_hash, workers.submit(analysis.compute, rgb)))
                    del item, rgb
                    if len(in_flight) >= FRAME_WORKERS:
                        oldest_s, oldest_hash, done = in_flight.popleft()
                        analysis.record(oldest_s, oldest_hash, *done.result())
                while in_flight:
                    oldest_s, oldest_hash, done = in_flight.popleft()
                    analysis.record(oldest_s, oldest_hash, *done.result())
        except StageTimeout:
            run.overran("frame sampling", f" after {received} frames")
        finally:
            feed.stop()
            workers.shutdown(wait=True, cancel_futures=True)
            run.timer.ms["video"] = round((time.perf_counter() - started) * 1000, 3)
        if reader is not None:
            run.timer.ms["frames"] = round(reader.read_s * 1000, 3)
            run.timer.ms["frame_analysis"] = round((analysis.busy_s + analysis.hash_s) * 1000, 3)
            if reader.timed_out:
                run.overran("frame sampling", f" after {feed.sent} frames")
        if feed.error is not None:
            run.warnings.append(
                "the frame sampling stage failed on this file; its result is missing"
            )
        if reader is None or not feed.sent:
            run.warnings.append("no video frames could be decoded")
            self._frame_results = []
            return
        self.frame_hashes, self.timeline, self._frame_results = analysis.finish()
        if progress is not None:
            progress.frames(len(self.timeline), feed.sent)
        if reader.truncated:
            run.abstentions.append(
                Abstention(
                    "video_too_long",
                    f"video too long to cover: only the first {reader.covered_s:.0f} s of "
                    f"{reader.duration_s:.0f} s were analysed",
                )
            )
        elif reader.spacing_s and reader.spacing_s > options.video_every_s * 1.5:
            run.abstentions.append(
                Abstention(
                    "video_sparse",
                    f"long video: {feed.sent} frames analysed, one every {reader.spacing_s:.1f} s",
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
    inputs.start_decoding()
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
