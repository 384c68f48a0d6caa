"""Pictures for the report page from the uploaded file, made before it is deleted: the file as
the person gave it (an image, or a video's first frame) and a strip of the analysed frames.

They go into the page as ``data:`` URIs and are never stored: a kept report shows the signed
thumbnail only. Every failure here costs the picture, never the page.
"""

from __future__ import annotations

import base64
import io
import logging
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
    import cv2

    out: list[str | None] = []
    cap = cv2.VideoCapture(str(path))
    try:
        for t in times:
            cap.set(cv2.CAP_PROP_POS_MSEC, float(t) * 1000)
            ok, frame = cap.read()
            if not ok or frame is None:
                out.append(None)
                continue
            h, w = frame.shape[:2]
            small = cv2.resize(frame, (width, max(1, round(h * width / w))))
            rgb = np.ascontiguousarray(small[:, :, ::-1])
            out.append(_data_uri(Image.fromarray(rgb), quality=70))
    except Exception:
        log.info("no frames for %s", path, exc_info=True)
    finally:
        cap.release()
    return out


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
    first = video_frames(path, [0.0], width=PREVIEW_SIDE)
    times = strip_times(report["timeline"])
    strip = video_frames(path, times)  # may stop short on a broken file
    return {"given": first[0] if first else None, "frames": list(zip(times, strip, strict=False))}
