"""Files cut short: found from their container framing, said plainly, and never a false alarm."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from provenance.media import CorruptMedia, MediaError, open_media
from provenance.structure import Incomplete, incomplete
from service.config import load_config
from service.pipeline import analyze
from tests.conftest import CA, FIXTURES, ROOT, sample


def cut(tmp_path: Path, name: str, keep: float) -> Path:
    data = sample(name).read_bytes()
    out = tmp_path / f"cut-{keep}-{name}"
    out.write_bytes(data[: int(len(data) * keep)])
    return out


def boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    out, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        out.append((kind, offset, size))
        offset += size
    return out


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("camera_capture.jpg", "jpeg_data"),
        ("unsigned.jpg", "jpeg_data"),
        ("ai_generated.png", "png_chunk"),
        ("signed_video.mp4", "bmff_box"),
    ],
)
@pytest.mark.parametrize("keep", [0.3, 0.8, 0.999])
def test_a_file_cut_short_is_found(tmp_path: Path, name: str, code: str, keep: float) -> None:
    found = open_media(cut(tmp_path, name, keep)).incomplete
    assert found is not None
    assert found.code == code
    assert found.describe().startswith("the ")


def test_whole_files_are_whole_samples_and_every_fixture() -> None:
    paths = [p for p in (ROOT / "samples").iterdir() if p.is_file()]
    if FIXTURES.is_dir():
        paths += [p for p in FIXTURES.rglob("*") if p.is_file()]
    checked, missing_index = 0, []
    for path in paths:
        try:
            media = open_media(path)
        except MediaError as exc:  # not media, or refused for its own reason
            if "moov" in exc.message:
                missing_index.append(path)
        else:
            checked += 1
            assert media.incomplete is None, (path, media.incomplete)
    assert not missing_index  # no real video (fragments among them) lacks its index
    assert checked >= 10


def test_data_after_the_end_marker_is_not_truncation(tmp_path: Path) -> None:
    padded = tmp_path / "trailer.jpg"
    padded.write_bytes(sample("unsigned.jpg").read_bytes() + b"camera trailer \xff\xd8 bytes")
    assert incomplete(padded, "image/jpeg") is None


def test_png_without_its_end_and_webp_shorter_than_declared(tmp_path: Path) -> None:
    png = sample("ai_generated.png").read_bytes()
    no_end = tmp_path / "no-end.png"
    no_end.write_bytes(png[: png.rindex(b"IEND") - 4])  # every chunk whole, IEND missing
    assert incomplete(no_end, "image/png") == Incomplete("png_end")
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), "teal").save(buf, "WEBP")
    webp = tmp_path / "short.webp"
    webp.write_bytes(buf.getvalue()[:-10])
    assert incomplete(webp, "image/webp") == Incomplete("riff_length")
    whole = tmp_path / "whole.webp"
    whole.write_bytes(buf.getvalue())
    assert incomplete(whole, "image/webp") is None


def no_moov(tmp_path: Path) -> Path:
    data = sample("signed_video.mp4").read_bytes()
    kept = b"".join(data[o : o + s] for kind, o, s in boxes(data) if kind != b"moov")
    out = tmp_path / "no-moov.mp4"
    out.write_bytes(kept)
    return out


def test_an_mp4_without_its_index_is_corrupt_media(tmp_path: Path) -> None:
    with pytest.raises(CorruptMedia, match="no 'moov' box"):
        open_media(no_moov(tmp_path))


def test_the_cli_reports_it_in_one_line_without_ffmpeg_noise(tmp_path: Path) -> None:
    """FFmpeg writes to the process's stderr directly, so this runs the real command."""
    cut_video = cut(tmp_path, "signed_video.mp4", 0.5)
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "verify", str(no_moov(tmp_path)), str(cut_video)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("shingan: ")
    assert "no 'moov' box" in line
    assert "[mov," not in done.stderr
    assert "looks incomplete" in done.stdout  # the cut one is analysed, and said to be cut


def test_a_cut_signed_jpeg_is_changed_but_said_to_be_incomplete(tmp_path: Path) -> None:
    options = load_config(overrides={"trust_anchors": [str(CA / "root.pem")]}).analyze_options()
    report = analyze(cut(tmp_path, "camera_capture.jpg", 0.9), options)
    v = report.verdict
    assert (v.label, v.confidence) == ("manipulated", "medium")  # capped from high
    assert "looks incomplete" in v.summary
    effects = {r.finding: r.effect for r in v.reasons}
    assert effects["file.incomplete"] == "contradicts"
    assert effects["c2pa.integrity_failure"] == "supports"
    data = report.to_dict()
    assert data["media"]["incomplete"] == "the JPEG ends before its end-of-image marker"
    whole = analyze(sample("camera_capture.jpg"), options).to_dict()
    assert whole["media"]["incomplete"] is None
    assert whole["verdict"]["confidence"] == "high"
