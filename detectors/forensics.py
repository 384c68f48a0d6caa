"""Forensic maps for people: error-level analysis and noise residual, rendered as images.

They are not part of the verdict. They help a trained eye spot regions that were pasted,
retouched or generated separately: such regions often re-compress differently (error level) or
carry different sensor noise (residual) from the rest of the picture. Both maps also light up on
edges and texture, which is why they are shown, never scored.
"""

from __future__ import annotations

import base64
import io

import cv2
import numpy as np
from PIL import Image

MAX_SIDE = 1024  # maps are for looking at; larger inputs are reduced first


def _reduce(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= MAX_SIDE:
        return rgb
    scale = MAX_SIDE / max(h, w)
    return cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def error_level(rgb: np.ndarray, quality: int = 90) -> np.ndarray:
    """Absolute difference to a JPEG re-compression at ``quality``, stretched to 0-255 (grey)."""
    img = _reduce(rgb)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    again = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    diff = np.abs(img.astype(np.int16) - again.astype(np.int16)).max(axis=2).astype(np.float32)
    top = float(np.percentile(diff, 99.5)) or 1.0
    out: np.ndarray = np.clip(diff * (255.0 / top), 0, 255).astype(np.uint8)
    return out


def noise_residual(rgb: np.ndarray) -> np.ndarray:
    """High-frequency residual (image minus its median-filtered self), stretched (grey)."""
    grey = cv2.cvtColor(_reduce(rgb), cv2.COLOR_RGB2GRAY)
    residual = np.abs(grey.astype(np.int16) - cv2.medianBlur(grey, 3).astype(np.int16))
    residual_f = residual.astype(np.float32)
    top = float(np.percentile(residual_f, 99.5)) or 1.0
    out: np.ndarray = np.clip(residual_f * (255.0 / top), 0, 255).astype(np.uint8)
    return out


def to_data_uri(grey: np.ndarray) -> str:
    """A map as a PNG ``data:`` URI with a perceptual colour map (dark = nothing to see)."""
    coloured = cv2.applyColorMap(grey, cv2.COLORMAP_INFERNO)[..., ::-1]
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(coloured)).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def maps(rgb: np.ndarray) -> dict[str, str]:
    """Both maps as ``data:`` URIs."""
    return {"error_level": to_data_uri(error_level(rgb)), "noise": to_data_uri(noise_residual(rgb))}
