"""A linear probe on a frozen CLIP image tower (implementation ``clip_probe``).

Ojha et al. (CVPR 2023, "Towards Universal Fake Image Detectors that Generalize Across
Generative Models") showed that a linear classifier on a frozen CLIP ViT's features separates
real from generated images of generators it never saw far better than a network trained
end-to-end on one generator's images, which learns that generator's artefacts and little else.

Views. One 224 px view of the whole image (resized) carries the semantic, "looks generated"
evidence; 224 px crops taken at native resolution keep the low-level traces that resizing
erases (upsampling and decoder patterns). Each view is embedded by the encoder; the card's
``features`` says whether the probe reads the global view's embedding, the mean of the native
crops' embeddings, or both (the shipped ``ai-clip`` reads the global view: validation preferred
it, docs/measurements/detectors.md). The preprocessing
here is the one the training script (``models/ai_clip/``) imports, so training and service see
identical pixels.

Card ``[params]``: ``features`` (``global``, ``native`` or ``global+native``: which views the
probe reads), ``native_crops`` (crops at native resolution, default 2), ``min_side`` (px;
smaller images are not scored, default 64). Card files: ``encoder`` (ONNX, NCHW float input
``pixel_values``, outputs ``image_embeds`` first) and ``head`` (JSON: ``features``, ``mean``,
``scale``, ``weights``, ``bias``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from detectors.base import Detector, DetectorResult, Pixels
from detectors.plugins import register

SIDE = 224
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)


#: Wider or taller images are first cut to this aspect ratio around their centre: the centre
#: square is all the view keeps, and resizing a 4096 x 1 strip's shorter side to 224 px would
#: allocate hundreds of megabytes. Training images never exceed it, so their views are unchanged.
MAX_ASPECT = 4.0


def global_view(rgb: np.ndarray, side: int = SIDE) -> np.ndarray:
    """The whole image: shorter side resized to ``side``, centre crop (CLIP's own recipe)."""
    h, w = rgb.shape[:2]
    if max(h, w) > MAX_ASPECT * min(h, w):
        keep = max(1, round(MAX_ASPECT * min(h, w)))
        if w > h:
            x = (w - keep) // 2
            rgb, w = rgb[:, x : x + keep], keep
        else:
            y = (h - keep) // 2
            rgb, h = rgb[y : y + keep], keep
    scale = side / min(h, w)
    nw, nh = max(side, round(w * scale)), max(side, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(rgb, (nw, nh), interpolation=interp)
    y, x = (nh - side) // 2, (nw - side) // 2
    return np.ascontiguousarray(resized[y : y + side, x : x + side])


def native_boxes(
    width: int, height: int, n: int, side: int = SIDE
) -> list[tuple[int, int, int, int]]:
    """``n`` crop boxes (left, top, right, bottom) at native resolution: the centre first, then
    spread evenly over the image. Images smaller than ``side`` give one box, the whole image."""
    if width < side or height < side:
        return [(0, 0, width, height)]
    cx, cy = (width - side) // 2, (height - side) // 2
    boxes = [(cx, cy, cx + side, cy + side)]
    if n > 1:
        rows = max(1, round(math.sqrt((n - 1) * height / width)))
        cols = max(1, math.ceil((n - 1) / rows))
        ys = np.linspace(0, height - side, rows + 2)[1:-1].round().astype(int)
        xs = np.linspace(0, width - side, cols + 2)[1:-1].round().astype(int)
        for y in ys:
            for x in xs:
                box = (int(x), int(y), int(x) + side, int(y) + side)
                if box not in boxes and len(boxes) < n:
                    boxes.append(box)
    return boxes


def fit_crop(crop: np.ndarray, side: int = SIDE) -> np.ndarray:
    """A native crop as the encoder takes it: upscaled only when the image is smaller."""
    if crop.shape[0] == side and crop.shape[1] == side:
        return crop
    return global_view(crop, side)


def to_input(views: np.ndarray) -> np.ndarray:
    """``N x 224 x 224 x 3`` uint8 RGB -> the encoder's normalised NCHW float input."""
    x = (views.astype(np.float32) / np.float32(255.0) - CLIP_MEAN) / CLIP_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def unit(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    out: np.ndarray = v / np.maximum(norm, 1e-8)
    return out


FEATURES = ("global", "native", "global+native")


def features(kind: str, global_embed: np.ndarray, native_embeds: np.ndarray) -> np.ndarray:
    """The probe's input: the unit global embedding, the unit mean of the native ones, or both
    side by side (``kind``, the card's ``features``)."""
    parts = []
    if kind in ("global", "global+native"):
        parts.append(unit(global_embed))
    if kind in ("native", "global+native"):
        parts.append(unit(native_embeds.mean(axis=0)))
    return np.concatenate(parts)


@dataclass(frozen=True)
class LinearHead:
    """A probe as the training scripts write it (``head.json``): standardise, then a dot product.
    ``logits`` gives the raw logit of each row of features."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    @classmethod
    def load(cls, path: Path) -> LinearHead:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            np.asarray(data["mean"], np.float64),
            np.asarray(data["scale"], np.float64),
            np.asarray(data["weights"], np.float64),
            float(data["bias"]),
        )

    def logits(self, x: np.ndarray) -> np.ndarray:
        out: np.ndarray = ((x - self.mean) / self.scale) @ self.weights + self.bias
        return out


@register("clip_probe")
class ClipProbe(Detector):
    @cached_property
    def head(self) -> LinearHead:
        return LinearHead.load(self.card.file("head").path)

    def _embed(self, views: np.ndarray) -> np.ndarray:
        session = self.runtime.session(self.card.file("encoder").path)
        name = session.get_inputs()[0].name
        out: np.ndarray = session.run([session.get_outputs()[0].name], {name: to_input(views)})[0]
        return out.astype(np.float64)

    @property
    def kind(self) -> str:
        kind = str(self.card.params.get("features", "global+native"))
        if kind not in FEATURES:
            raise ValueError(f"{self.card.name}: features must be one of {', '.join(FEATURES)}")
        return kind

    @property
    def crops_wanted(self) -> int:
        return 0 if self.kind == "global" else int(self.card.params.get("native_crops", 2))

    def logit(self, global_rgb: np.ndarray, crops: list[np.ndarray]) -> float:
        embeds = self._embed(np.stack([global_view(global_rgb)] + [fit_crop(c) for c in crops]))
        return float(self.head.logits(features(self.kind, embeds[0], embeds[1:])))

    def _min_side(self) -> int:
        return int(self.card.params.get("min_side", 64))

    def _score(
        self, global_rgb: np.ndarray, crops: list[np.ndarray], size: tuple[int, int]
    ) -> DetectorResult:
        # Also the copy the global view is made from (a reduced copy of a 200000 x 64 strip is
        # 4096 x 1): too thin to judge, whatever its native size.
        if min(size) < self._min_side() or min(global_rgb.shape[:2]) < 16:
            return self.result(
                False,
                notes=f"image too small ({size[0]}x{size[1]}); needs at least "
                f"{self._min_side()} px a side",
            )
        logit = self.logit(global_rgb, crops)
        return self.result(
            True,
            self.card.calibration.apply(logit),
            raw_logit=round(logit, 4),
            native_crops=len(crops),
        )

    def analyze_image(self, rgb: np.ndarray) -> DetectorResult:
        h, w = rgb.shape[:2]
        n = self.crops_wanted
        crops = [rgb[y0:y1, x0:x1] for x0, y0, x1, y1 in native_boxes(w, h, n)] if n else []
        return self._score(rgb, crops, (w, h))

    def analyze_pixels(self, pixels: Pixels) -> DetectorResult:
        """The global view from the working copy, the crops at native resolution."""
        if not pixels.reduced:
            return self.analyze_image(pixels.oriented)
        w, h = pixels.native_size
        n = self.crops_wanted
        crops = [pixels.native_crop(b) for b in native_boxes(w, h, n)] if n else []
        return self._score(pixels.oriented, crops, (w, h))
