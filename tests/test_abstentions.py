"""Typed abstentions: each condition with its stable code, through the pipeline."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samples.make_samples import draw_scene
from service.abstentions import flat_share, jpeg_quality
from service.pipeline import AnalyzeOptions, analyze


def codes(path: Path) -> set[str]:
    report = analyze(path, AnalyzeOptions()).to_dict()
    found = {a["code"] for a in report["abstentions"]}
    assert all(a["message"] in report["warnings"] for a in report["abstentions"])
    return found


@pytest.mark.parametrize("quality", [95, 75, 40])
def test_jpeg_quality_estimate(quality: int) -> None:
    buf = io.BytesIO()
    Image.fromarray(draw_scene(320, 240, seed=2)).save(buf, format="JPEG", quality=quality)
    assert jpeg_quality(Image.open(io.BytesIO(buf.getvalue()))) == pytest.approx(quality, abs=2)
    assert jpeg_quality(Image.new("RGB", (8, 8))) is None


def test_heavily_recompressed_and_too_small(tmp_path: Path) -> None:
    f = tmp_path / "small.jpg"
    Image.fromarray(draw_scene(200, 150, seed=3)).save(f, quality=45)
    assert {"heavily_recompressed", "too_small"} <= codes(f)
    g = tmp_path / "fine.jpg"
    Image.fromarray(draw_scene(640, 480, seed=3)).save(g, quality=92)
    assert not {"heavily_recompressed", "too_small"} & codes(g)


def test_screenshot_like(tmp_path: Path) -> None:
    f = tmp_path / "shot.png"
    Image.fromarray(draw_scene(1920, 1080, seed=4)).save(f)
    assert "screenshot_like" in codes(f)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS R5"
    g = tmp_path / "camera.png"
    Image.fromarray(draw_scene(1920, 1080, seed=4)).save(g, exif=exif)
    assert "screenshot_like" not in codes(g)


def test_flat_share_is_the_share_of_blocks_with_standard_deviation_under_one() -> None:
    """The block variances from area averages equal the definition, at the boundary too."""
    import cv2

    rng = np.random.default_rng(11)
    levels = np.kron(rng.choice([3, 4], size=(64, 64)), np.ones((8, 8), dtype=int))
    grey = (100 + rng.random((512, 512)) * levels).astype(np.uint8)  # variances around 1
    grey[:8, :8] = np.repeat([[100], [102]], 4, axis=0)  # variance exactly 1: not flat
    grey[8:16, :8] = 100
    grey[8, 0] = 108  # one pixel off by 8: variance 63/64, flat
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    assert np.array_equal(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), grey)
    blocks = grey.astype(np.float64).reshape(64, 8, 64, 8).std(axis=(1, 3))
    assert blocks[0, 0] == 1.0
    assert blocks[1, 0] < 1.0
    assert 0.2 < (blocks < 1.0).mean() < 0.8  # both kinds, many of each
    assert flat_share(rgb) == (blocks < 1.0).mean()


def test_illustration_like(tmp_path: Path) -> None:
    canvas = np.full((400, 600, 3), 255, np.uint8)
    canvas[100:140, 50:550] = (20, 20, 20)  # a "line of text" on white
    f = tmp_path / "slide.png"
    Image.fromarray(canvas).save(f)
    assert flat_share(canvas) > 0.8
    assert "illustration_like" in codes(f)
    assert flat_share(draw_scene(600, 400, seed=5)) < 0.1
