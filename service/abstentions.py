"""Typed abstentions: conditions under which pixel signals say little, so a platform can route the
item to a person. Each has a stable ``code``; the report lists them in ``abstentions`` and their
messages in ``warnings``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from PIL import Image

from provenance.media import DecodedImage, Media
from provenance.metadata import MetadataFinding

MIN_SIDE = 256
HEAVY_JPEG_QUALITY = 70
# benchmarks/abstentions_eval.py on ../shared/fixtures/train: at 0.8, 1 of 148 real photographs
# counts as flat; at 0.55 it was 8.
FLAT_SHARE = 0.8

# libjpeg's standard luminance table (quality 50); the order does not matter for the estimate.
_STD_LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip

# Screen sizes of common monitors and phones (either orientation).
_SCREENS = {
    (1920, 1080), (2560, 1440), (1366, 768), (1440, 900), (1536, 864), (1280, 720),
    (1280, 800), (1680, 1050), (3840, 2160), (2880, 1800), (1170, 2532), (1284, 2778),
    (1179, 2556), (1290, 2796), (750, 1334), (828, 1792), (1125, 2436), (1242, 2688),
    (1080, 2400), (1080, 2340), (1440, 3200), (1080, 1920), (1440, 2960), (720, 1600),
}  # fmt: skip


#: Every reason an analysis may abstain; the report contract's enum is this list.
AbstentionCode = Literal[
    "too_small",
    "heavily_recompressed",
    "screenshot_like",
    "illustration_like",
    "no_faces",
    "video_too_long",
    "video_sparse",
    "timed_out",
]


#: Images outside what the detectors' thresholds were calibrated on (photographs): there a
#: detector's score is a lead, never a decision. Measured on ai-clip's held-out test split
#: (docs/measurements/detector-gating.md): no false positive of the 366 real photographs
#: carried either, and one AI image of 335 (a screenshot) lost its decision.
OUT_OF_DOMAIN: frozenset[AbstentionCode] = frozenset({"illustration_like", "screenshot_like"})


@dataclass(frozen=True)
class Abstention:
    code: AbstentionCode
    message: str


def jpeg_quality(image: Image.Image) -> int | None:
    """libjpeg-style quality estimated from the luminance quantisation table, or None."""
    tables = getattr(image, "quantization", None)
    if not tables or 0 not in tables:
        return None
    scale = 100.0 * float(sum(tables[0])) / sum(_STD_LUMINANCE)
    quality = (200.0 - scale) / 2.0 if scale <= 100 else 5000.0 / scale
    return round(min(100.0, max(1.0, quality)))


def flat_share(rgb: np.ndarray) -> float:
    """Share of 8x8 luminance blocks that are flat (std < 1): drawings, text, UI.

    Measured at native resolution on a central window of at most 512x512: downscaling would
    smooth a photograph's noise and make it look flat. Photographs keep some noise even in
    skies (std above 1); digital graphics have exactly flat areas.
    """
    h, w = rgb.shape[:2]
    y0, x0 = max(0, (h - 512) // 2), max(0, (w - 512) // 2)
    window = rgb[y0 : y0 + 512, x0 : x0 + 512]
    grey = cv2.cvtColor(window, cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    h8, w8 = h // 8 * 8, w // 8 * 8
    if h8 == 0 or w8 == 0:
        return 0.0
    # std < 1 as variance < 1 from each block's mean and mean square: OpenCV's area average by
    # a whole factor of these integer levels is exact in float64, so the variances are exact
    # (the float32 standard deviation this replaces, three times slower, is exact near 1 too).
    g = grey[:h8, :w8].astype(np.float64)
    size = (w8 // 8, h8 // 8)
    mean = cv2.resize(g, size, interpolation=cv2.INTER_AREA)
    mean_square = cv2.resize(g * g, size, interpolation=cv2.INTER_AREA)
    return float(((mean_square - mean * mean) < 1.0).mean())


def image_abstentions(
    media: Media, decoded: DecodedImage, metadata: MetadataFinding | None
) -> list[Abstention]:
    out: list[Abstention] = []
    image = decoded.image
    w, h = decoded.native_size
    if min(h, w) < MIN_SIDE:
        out.append(
            Abstention(
                "too_small",
                f"image too small for pixel analysis ({w}x{h}; under {MIN_SIDE} px a side)",
            )
        )
    quality = jpeg_quality(image) if media.mime == "image/jpeg" else None
    if quality is not None and quality < HEAVY_JPEG_QUALITY:
        out.append(
            Abstention(
                "heavily_recompressed",
                f"image heavily recompressed (JPEG quality about {quality}); fine traces are lost",
            )
        )
    camera = metadata.camera if metadata else None
    said = " ".join(
        [*(metadata.software if metadata else ()), *(metadata.fields.values() if metadata else ())]
    ).lower()
    screen_size = (w, h) in _SCREENS
    if camera is None and (
        "screenshot" in said
        or "screen shot" in said
        or (screen_size and media.mime in ("image/png", "image/webp", "image/bmp"))
    ):
        out.append(
            Abstention(
                "screenshot_like", "image looks like a screenshot; detectors were not made for them"
            )
        )
    y0, x0 = max(0, (h - 512) // 2), max(0, (w - 512) // 2)
    window = decoded.native_crop((x0, y0, min(w, x0 + 512), min(h, y0 + 512)))
    if flat_share(window) > FLAT_SHARE:
        out.append(
            Abstention(
                "illustration_like",
                "image is mostly flat areas (illustration, text or graphics); "
                "detectors were trained on photographs",
            )
        )
    return out
