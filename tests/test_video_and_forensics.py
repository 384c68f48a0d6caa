"""Video frames through the detectors (timeline, aggregate, coverage warnings) and forensic maps."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from flask.testing import FlaskClient

from detectors import forensics
from detectors.base import DetectorResult
from detectors.registry import DetectorSet, Registry
from detectors.video import aggregate
from examples.custom_detector.make_model import build
from provenance.media import sample_video_frames
from service.pipeline import AnalyzeOptions, analyze
from tests.conftest import sample


@pytest.fixture
def options(tmp_path: Path) -> AnalyzeOptions:
    build(tmp_path / "models")
    return AnalyzeOptions(detectors=DetectorSet.load(Registry([tmp_path / "models"])))


def frame(score: float | None, applicable: bool = True) -> DetectorResult:
    return DetectorResult(
        name="d",
        version="1",
        kind="synthetic_image",
        applicable=applicable,
        score=score,
        threshold=0.5,
        threshold_fpr=0.01,
        above_threshold=bool(score is not None and score >= 0.5),
    )


def test_aggregate_is_robust_to_a_few_noisy_frames() -> None:
    agg = aggregate([frame(0.1), frame(0.12), frame(0.95), frame(0.11), frame(0.99)])
    assert agg is not None
    assert agg.score == pytest.approx(0.12)
    assert not agg.above_threshold
    assert agg.details["share_above_threshold"] == pytest.approx(0.4)
    assert aggregate([]) is None
    none = aggregate([frame(None, applicable=False)])
    assert none is not None
    assert not none.applicable


def test_aggregate_names_the_frame_and_face_that_scored_highest() -> None:
    from dataclasses import replace

    def face(score: float | None, box: list[float] | None) -> DetectorResult:
        details = {"face_box": box} if box else {}
        return replace(
            frame(score, applicable=score is not None),
            kind="face_manipulation",
            details=details,
        )

    frames = [
        face(0.2, [1, 1, 9, 9]),
        face(None, None),
        face(0.9, [5, 5, 50, 50]),
        face(0.3, [2, 2, 8, 8]),
    ]
    agg = aggregate(frames, [0.0, 1.0, 2.0, 3.0])
    assert agg is not None
    assert agg.score == pytest.approx(0.3)
    assert agg.details["max_time_s"] == 2.0
    assert agg.details["max_face_box"] == [5, 5, 50, 50]
    assert "max_time_s" not in (aggregate(frames) or agg).details


def test_video_timeline_and_aggregated_detector(options: AnalyzeOptions) -> None:
    r = analyze(sample("signed_video.mp4"), options).to_dict()
    assert r["media"]["frames_analyzed"] == 2
    assert [e["time_s"] for e in r["timeline"]] == [0.0, 1.0]
    assert all("brightness-example" in e["scores"] for e in r["timeline"])
    det = r["detectors"][0]
    assert det["notes"] == "median of 2 frames"
    assert det["details"]["frames_scored"] == 2
    assert r["versions"]["models"]["brightness-example"]


def test_video_coverage_warnings(options: AnalyzeOptions) -> None:
    cut = analyze(sample("signed_video.mp4"), replace(options, video_max_duration_s=1.0)).to_dict()
    assert any("too long to cover" in w for w in cut["warnings"])
    assert cut["media"]["frames_analyzed"] == 1
    sparse = analyze(
        sample("signed_video.mp4"), replace(options, video_every_s=0.2, video_max_frames=2)
    ).to_dict()
    assert any("one every" in w for w in sparse["warnings"])


def test_sampling_bounds() -> None:
    sampled = sample_video_frames(sample("signed_video.mp4"), every_s=0.1, max_frames=5)
    assert len(sampled.frames) == 5
    assert sampled.duration_s == pytest.approx(2.0)
    assert not sampled.truncated
    assert all(f.shape == (192, 320, 3) for _, f in sampled.frames)


def test_forensic_maps() -> None:
    rgb = np.asarray(
        __import__("PIL.Image").Image.open(sample("camera_capture.jpg")).convert("RGB")
    )
    ela = forensics.error_level(rgb)
    noise = forensics.noise_residual(rgb)
    assert ela.shape == noise.shape == rgb.shape[:2]
    assert ela.dtype == np.uint8
    assert ela.max() == 255
    big = np.zeros((3000, 2000, 3), np.uint8)
    assert max(forensics.error_level(big).shape) == forensics.MAX_SIDE
    uris = forensics.maps(rgb)
    assert set(uris) == {"error_level", "noise"}
    assert all(u.startswith("data:image/png;base64,") for u in uris.values())


def test_forensics_only_on_request(client: FlaskClient) -> None:
    with sample("unsigned.jpg").open("rb") as fh:
        plain = client.post("/v1/verify", data=fh.read()).get_json()
    assert plain["forensics"] is None
    with sample("unsigned.jpg").open("rb") as fh:
        rich = client.post("/v1/verify?forensics=1", data=fh.read()).get_json()
    assert rich["forensics"]["error_level"].startswith("data:image/png")
