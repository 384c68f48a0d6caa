"""The whole analysis path on the project's samples and on files made to exercise conflicts."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from provenance.trust import build_trust
from samples.make_samples import A1111_PARAMETERS, IPTC, draw_generated, manifest, sign
from service.pipeline import AnalyzeOptions, analyze
from tests.conftest import CA, sample

TRUSTED = AnalyzeOptions(trust=build_trust(anchors=[CA / "root.pem"]))


def test_watermarked_sample_is_ai_generated_by_watermark() -> None:
    r = analyze(sample("sdxl_watermarked.png"), TRUSTED).to_dict()
    assert (r["verdict"]["label"], r["verdict"]["confidence"]) == ("ai_generated", "high")
    assert r["verdict"]["basis"] == ["watermark"]
    sdxl = next(w for w in r["provenance"]["watermarks"] if w["scheme"] == "sdxl")
    assert sdxl["detected"]
    assert sdxl["bits_matched"] >= sdxl["threshold"]
    assert sdxl["payload"] == "0xB3EC907BB19E"
    assert {"decode", "metadata", "watermarks", "hashing"} <= set(r["timings_ms"])


def test_metadata_sample_is_ai_generated_by_metadata() -> None:
    r = analyze(sample("ai_metadata.png"), TRUSTED).to_dict()
    assert (r["verdict"]["label"], r["verdict"]["confidence"]) == ("ai_generated", "medium")
    assert r["verdict"]["basis"] == ["metadata"]
    meta = r["provenance"]["metadata"]
    assert meta["generator"] == "automatic1111"
    assert meta["signatures"][0]["seed"] == "20261128"
    assert meta["signatures"][0]["prompt"] == "a watercolour harbour at dawn, fishing boats"


def test_image_report_carries_pdq() -> None:
    r = analyze(sample("camera_capture.jpg"), TRUSTED).to_dict()
    assert len(r["media"]["hashes"]["pdq"]) == 64
    assert r["media"]["hashes"]["frames"] == []


def test_video_report_carries_frame_hashes() -> None:
    r = analyze(sample("signed_video.mp4"), TRUSTED).to_dict()
    frames = r["media"]["hashes"]["frames"]
    assert [f["time_s"] for f in frames] == [0.0, 1.0]
    assert r["media"]["frames_analyzed"] == 2
    assert r["media"]["hashes"]["pdq"] is None
    # The container's metadata is read (OpenCV's FFmpeg names itself in moov/udta/meta/ilst).
    meta = r["provenance"]["metadata"]
    assert meta["error"] is None
    assert meta["software"][0].startswith("Lavf")
    assert meta["fields"]["QuickTime:Encoder"] == meta["software"][0]
    assert "metadata" in r["timings_ms"]


def test_trusted_camera_manifest_with_ai_metadata_is_a_shown_conflict(tmp_path: Path) -> None:
    """Rule 5 outranks rule 6: the AI metadata decides, the trusted manifest contradicts."""
    info = PngInfo()
    info.add_text("parameters", A1111_PARAMETERS)
    buf = io.BytesIO()
    Image.fromarray(draw_generated(256, 256, seed=3)).save(buf, format="PNG", pnginfo=info)
    signed = sign(
        buf.getvalue(),
        "image/png",
        manifest(
            "claimed_capture.png",
            [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"}],
            "image/png",
        ),
        "signer-es256",
    )
    path = tmp_path / "conflict.png"
    path.write_bytes(signed)
    r = analyze(path, TRUSTED).to_dict()
    assert r["provenance"]["c2pa"]["state"] == "trusted"
    assert (r["verdict"]["label"], r["verdict"]["confidence"]) == ("ai_generated", "medium")
    effects = {x["finding"]: x["effect"] for x in r["verdict"]["reasons"]}
    assert effects["metadata.generator"] == "supports"
    assert effects["c2pa.trusted"] == "contradicts"


def test_truncated_image_still_gets_a_report(tmp_path: Path) -> None:
    data = sample("ai_metadata.png").read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 3])
    r = analyze(path, TRUSTED).to_dict()
    assert any("could not be decoded" in w for w in r["warnings"])
    assert r["verdict"]["label"] == "inconclusive"
    assert r["provenance"]["watermarks"] == []
    assert "could not be decoded" in r["provenance"]["metadata"]["error"]


def test_a_failing_stage_costs_its_signal_not_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    from provenance import watermarks

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated decoder bug")

    monkeypatch.setattr(watermarks, "detect", boom)
    r = analyze(sample("ai_metadata.png"), TRUSTED).to_dict()
    assert any("watermarks stage failed" in w for w in r["warnings"])
    assert r["verdict"]["basis"] == ["metadata"]
