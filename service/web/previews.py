"""Pictures for the report page from the uploaded file, made before it is deleted: the file as
the person gave it (an image, or a video's first frame) and a strip of the analysed frames.

They go into the page as ``data:`` URIs and are never stored: a kept report shows the signed
thumbnail only. Every failure here costs the picture, never the page.
"""

from __future__ import annotations

import base64
import io
import logging
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

log = logging.getLogger(__name__)

PREVIEW_SIDE = 480
FRAME_WIDTH = 120
MAX_FRAMES = 12
#: The strip's frames are read again from the upload, within this many seconds.
READ_LIMIT_S = 60.0


def _data_uri(image: Image.Image, quality: int = 80) -> str:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_preview(path: Path) -> str | None:
    """The image as people see it (EXIF orientation applied), at most 480 px a side."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                im.draft("RGB", (PREVIEW_SIDE * 2, PREVIEW_SIDE * 2))  # JPEG: decode reduced
                shown = ImageOps.exif_transpose(im)
                shown.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
                return _data_uri(shown)
    except Exception:  # any format Pillow cannot show costs the picture only
        log.info("no preview for %s", path, exc_info=True)
        return None


def video_frames(path: Path, times: Sequence[float], width: int = FRAME_WIDTH) -> list[str | None]:
    """Small pictures of the frames at ``times`` (seconds); None where one cannot be read."""
    return _video_pictures(path, [(t, width) for t in times])


def _video_pictures(path: Path, wanted: Sequence[tuple[float, int]]) -> list[str | None]:
    """Pictures of the frames at the ``(time in seconds, width)`` asked, read in one pass as
    the analysis read them (:class:`provenance.media.VideoReader`); None where one cannot be
    read."""
    import cv2

    from provenance.media import VideoReader

    made: dict[tuple[float, int], str] = {}
    try:
        deadline = time.monotonic() + READ_LIMIT_S
        with VideoReader(path, times=[t for t, _ in wanted], deadline=deadline) as reader:
            fps = reader.fps
            for t, rgb in reader.frames():
                for asked, width in wanted:
                    if round(round(asked * fps) / fps, 3) != t or (asked, width) in made:
                        continue
                    h, w = rgb.shape[:2]
                    size = (width, max(1, round(h * width / w)))
                    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
                    made[(asked, width)] = _data_uri(Image.fromarray(small), quality=70)
    except Exception:
        log.info("no frames for %s", path, exc_info=True)
    return [made.get(key) for key in wanted]


def strip_times(timeline: Sequence[dict[str, float]]) -> list[float]:
    """At most :data:`MAX_FRAMES` of the analysed frames' times, evenly spread."""
    times = [float(e["time_s"]) for e in timeline]
    if len(times) <= MAX_FRAMES:
        return times
    picks = np.linspace(0, len(times) - 1, MAX_FRAMES).round().astype(int)
    return [times[i] for i in picks]


def for_upload(path: Path, report: dict[str, Any]) -> dict[str, Any]:
    """The pictures a report page shows of its upload: the file as given (an image, or a video's
    first frame) and, for a video, the analysed frames."""
    kind = report["media"]["kind"]
    if kind == "image":
        return {"given": image_preview(path)}
    if kind != "video":
        return {}
    times = strip_times(report["timeline"])
    # One pass over the file for the first frame and the strip (may stop short on a broken file).
    first, *strip = _video_pictures(path, [(0.0, PREVIEW_SIDE)] + [(t, FRAME_WIDTH) for t in times])
    return {"given": first, "frames": list(zip(times, strip, strict=False))}
