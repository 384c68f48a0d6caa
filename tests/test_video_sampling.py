"""Video frames read in one pass (provenance.media.VideoReader): the same times and pixels as
seeking to each frame gave, the deadline and the frame cap respected, and files whose header
claims frames they do not hold."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

from provenance import media
from provenance.media import VideoReader, frame_plan, sample_video_frames
from tests.conftest import sample

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def seek_each(
    path: Path, *, every_s: float = 1.0, max_frames: int = 64, max_duration_s: float = 600.0
) -> list[tuple[float, np.ndarray]]:
    """How frames were sampled before the one-pass reader: a seek per frame."""
    cap = cv2.VideoCapture(str(path))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        usable = min(count, int(max_duration_s * fps))
        step = max(1, round(fps * every_s))
        indices = list(range(0, usable, step))
        if len(indices) > max_frames:
            picks = np.linspace(0, len(indices) - 1, max_frames).round().astype(int)
            indices = [indices[i] for i in picks]
        out = []
        for index in indices:
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = cap.read()
            if ok:
                out.append((round(index / fps, 3), cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
        return out
    finally:
        cap.release()


def numbered_clip(path: Path, frames: int = 120, fps: float = 10.0, codec: str = "mp4v") -> Path:
    """Every frame different (its number drawn on a moving gradient): a wrong frame shows."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*codec), fps, (160, 96))
    assert writer.isOpened()
    ramp = np.tile(np.linspace(0, 200, 160, dtype=np.uint8), (96, 1))
    for i in range(frames):
        frame = np.dstack([np.roll(ramp, i * 3, axis=1), ramp, np.full_like(ramp, i % 256)])
        cv2.putText(frame, str(i), (20, 70), cv2.FONT_HERSHEY_SIMPLEX, 1.8, (255, 255, 255), 3)
        writer.write(np.ascontiguousarray(frame))
    writer.release()
    return path


def assert_same(got: Any, want: list[tuple[float, np.ndarray]]) -> None:
    assert [t for t, _ in got] == [t for t, _ in want]
    for (t, a), (_, b) in zip(got, want, strict=True):
        assert np.array_equal(a, b), t


def test_same_times_and_pixels_as_seeking_each_frame() -> None:
    path = sample("signed_video.mp4")
    assert_same(sample_video_frames(path).frames, seek_each(path))
    got = sample_video_frames(path, every_s=0.1, max_frames=5).frames
    assert_same(got, seek_each(path, every_s=0.1, max_frames=5))
    assert [t for t, _ in got] == [0.0, 0.5, 1.0, 1.4, 1.9]


def test_plan_is_the_former_sampling() -> None:
    assert frame_plan(25, 1500, every_s=1, max_frames=64, max_duration_s=600) == (
        list(range(0, 1500, 25)),
        1500,
    )
    indices, usable = frame_plan(30, 36000, every_s=1, max_frames=64, max_duration_s=600)
    assert usable == 18000
    assert len(indices) == 64
    assert indices[0] == 0
    assert indices[-1] == 17970


@pytest.mark.parametrize("seek_gap_s", [media.SEEK_GAP_S, 0.5, 1e9])
def test_long_gaps_seeked_or_read_through_give_the_same_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seek_gap_s: float
) -> None:
    """Gaps longer than SEEK_GAP_S are seeked across; either way, the frames seeking gave."""
    path = numbered_clip(tmp_path / "numbered.mp4", frames=200)
    monkeypatch.setattr(media, "SEEK_GAP_S", seek_gap_s)
    for every_s, max_frames in [(1.0, 64), (0.3, 64), (1.0, 4), (0.1, 7)]:
        got = sample_video_frames(path, every_s=every_s, max_frames=max_frames).frames
        assert_same(got, seek_each(path, every_s=every_s, max_frames=max_frames))


def test_the_frame_cap_and_the_duration_cap(tmp_path: Path) -> None:
    path = numbered_clip(tmp_path / "numbered.mp4", frames=200)
    capped = sample_video_frames(path, every_s=0.1, max_frames=7)
    assert len(capped.frames) == 7
    assert capped.frames[0][0] == 0.0
    assert capped.frames[-1][0] == 19.9
    assert capped.spacing_s == pytest.approx(3.3)
    short = sample_video_frames(path, max_duration_s=5.0)
    assert [t for t, _ in short.frames] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert short.truncated
    assert short.covered_s == 5.0


def test_reading_stops_at_the_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The deadline is checked before every frame grabbed, not only between wanted frames."""
    path = numbered_clip(tmp_path / "numbered.mp4", frames=200)
    ticks = {"n": 0}

    def clock() -> float:  # 1 s a call
        ticks["n"] += 1
        return float(ticks["n"])

    monkeypatch.setattr(
        media, "time", SimpleNamespace(monotonic=clock, perf_counter=time.perf_counter)
    )
    with VideoReader(path, deadline=35.0) as reader:
        frames = list(reader.frames())
        assert reader.timed_out
    # 35 checks: the frames up to about 3 s (10 frames a second), not one more.
    assert [t for t, _ in frames] == [0.0, 1.0, 2.0, 3.0]
    assert ticks["n"] <= 36


def test_header_claiming_more_frames_than_the_file_holds(tmp_path: Path) -> None:
    """An AVI cut in half (an interrupted download): the header says 100 frames, 46 remain."""
    whole = numbered_clip(tmp_path / "whole.avi", frames=100, codec="MJPG")
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    cap = cv2.VideoCapture(str(cut))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 100
    cap.release()
    started = time.monotonic()
    sampled = sample_video_frames(cut, deadline=time.monotonic() + 60)
    assert not sampled.timed_out
    assert time.monotonic() - started < 30  # stopped at the real end, not at the deadline
    assert sampled.duration_s == 10.0  # as the header says
    times = [t for t, _ in sampled.frames]
    assert times == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert_same(sampled.frames, seek_each(cut))


def test_unreadable_files_give_no_frames(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypisom" + os.urandom(2000))
    sampled = sample_video_frames(junk)
    assert sampled.frames == ()
    assert sampled.duration_s is None


# --- the pipeline streams the frames ----------------------------------------------------------


class FakeReader:
    """A reader of ``n`` frames a second apart that records how far it ran ahead."""

    def __init__(self, n: int, gate: Any = None) -> None:
        self.indices = list(range(n))
        self.read_s = 0.0
        self.timed_out = False
        self.truncated = False
        self.duration_s = float(n)
        self.covered_s = float(n)
        self.spacing_s = 1.0
        self.yielded = 0
        self.gate = gate

    def __enter__(self) -> FakeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def frames(self) -> Any:
        for i in self.indices:
            if self.gate is not None:
                self.gate.wait()
            self.yielded += 1
            yield float(i), np.full((64, 96, 3), i % 256, np.uint8)


@pytest.fixture
def custom_options(tmp_path: Path) -> Any:
    from detectors.registry import DetectorSet, Registry
    from examples.custom_detector.make_model import build
    from service.pipeline import AnalyzeOptions

    build(tmp_path / "models")
    return AnalyzeOptions(detectors=DetectorSet.load(Registry([tmp_path / "models"])))


def test_frames_are_analysed_as_they_are_read_not_held(
    custom_options: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service import pipeline

    readers: list[FakeReader] = []
    ahead: list[int] = []
    detector = custom_options.detectors.detectors[0]
    analyse = detector.analyze_image

    def spy(rgb: np.ndarray) -> Any:
        ahead.append(readers[0].yielded - len(ahead))
        return analyse(rgb)

    def make(*args: Any, **kwargs: Any) -> FakeReader:
        readers.append(FakeReader(40))
        return readers[0]

    monkeypatch.setattr(pipeline, "VideoReader", make)
    monkeypatch.setattr(detector, "analyze_image", spy)
    report = pipeline.analyze(sample("signed_video.mp4"), custom_options).to_dict()
    assert [e["time_s"] for e in report["timeline"]] == [float(i) for i in range(40)]
    assert report["media"]["frames_analyzed"] == 40
    # The queue's two, one being put, the frames being analysed.
    assert max(ahead) <= 3 + pipeline.FRAME_WORKERS
    assert {"frames", "frame_analysis", "video"} <= set(report["timings_ms"])


def test_frames_analysed_together_are_recorded_in_time_order(
    custom_options: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames finish out of order (even ones slower); the timeline, the per-frame scores and
    the clip's result are those of one frame at a time."""
    import threading

    from service import pipeline

    detector = custom_options.detectors.detectors[0]
    analyse = detector.analyze_image
    overlapped = threading.Event()
    running = [0]
    lock = threading.Lock()

    def slow_evens(rgb: np.ndarray) -> Any:
        with lock:
            running[0] += 1
            if running[0] > 1:
                overlapped.set()
        try:
            if int(rgb[0, 0, 0]) % 2 == 0:
                time.sleep(0.03)
            return analyse(rgb)
        finally:
            with lock:
                running[0] -= 1

    def run(workers: int) -> dict[str, Any]:
        monkeypatch.setattr(pipeline, "FRAME_WORKERS", workers)
        monkeypatch.setattr(pipeline, "VideoReader", lambda *a, **k: FakeReader(12))
        return dict(pipeline.analyze(sample("signed_video.mp4"), custom_options).to_dict())

    monkeypatch.setattr(detector, "analyze_image", slow_evens)
    together, alone = run(2), run(1)
    assert overlapped.is_set()  # two frames were analysed at once
    assert [e["time_s"] for e in together["timeline"]] == [float(i) for i in range(12)]
    scores = [e["scores"] for e in together["timeline"]]
    assert len({json.dumps(x, sort_keys=True) for x in scores}) > 6  # frames score differently
    assert together["timeline"] == alone["timeline"]
    assert together["detectors"] == alone["detectors"]


def test_a_hung_reader_is_left_behind_at_the_deadline(
    custom_options: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    from dataclasses import replace

    from service import pipeline
    from service.stages import abandoned_stages

    gate = threading.Event()
    monkeypatch.setattr(pipeline, "VideoReader", lambda *a, **k: FakeReader(5, gate))
    monkeypatch.setattr(pipeline, "SAMPLING_GRACE_S", 0.2)
    options = replace(custom_options, stage_timeout_s=0.3)
    before = abandoned_stages()
    try:
        started = time.monotonic()
        report = pipeline.analyze(sample("signed_video.mp4"), options).to_dict()
        assert time.monotonic() - started < 5
        assert abandoned_stages() == before + 1
    finally:
        gate.set()
    timed = [a["message"] for a in report["abstentions"] if a["code"] == "timed_out"]
    assert any("frame sampling" in m for m in timed)
    assert "no video frames could be decoded" in report["warnings"]
    for _ in range(100):
        if abandoned_stages() == before:
            break
        time.sleep(0.02)
    assert abandoned_stages() == before


def test_page_pictures_of_the_analysed_frames_in_one_pass() -> None:
    import base64
    import io

    from PIL import Image

    from service.web import previews

    report = {"media": {"kind": "video"}, "timeline": [{"time_s": 0.0}, {"time_s": 1.0}]}
    pictures = previews.for_upload(sample("signed_video.mp4"), report)
    given = pictures["given"]
    assert given.startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(base64.b64decode(given.split(",", 1)[1]))) as im:
        assert im.size == (previews.PREVIEW_SIDE, 288)
    assert [t for t, _ in pictures["frames"]] == [0.0, 1.0]
    assert all(uri and uri.startswith("data:image/jpeg") for _, uri in pictures["frames"])
    assert previews.video_frames(sample("signed_video.mp4"), [1.0, 50.0])[1] is None
