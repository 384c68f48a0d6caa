"""Generic classifier implementations driven entirely by their cards.

``image_classifier``  the whole image, resized (shorter side) and centre-cropped to the card's
                      input size: the usual shape of an exported image classifier, and what a
                      user's own ONNX model most likely is.
``patch_classifier``  patches at native resolution on a regular grid, one logit each, averaged:
                      generator traces live in pixel statistics that resizing destroys.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from detectors.base import Detector, DetectorResult, Pixels
from detectors.card import InputSpec
from detectors.plugins import register


def normalise(batch: np.ndarray, spec: InputSpec) -> np.ndarray:
    """``N x H x W x 3`` uint8 RGB -> the card's layout, colour order, scale and mean/std."""
    x: np.ndarray = batch.astype(np.float32)
    if spec.colour == "BGR":
        x = x[..., ::-1]
    mean = np.asarray(spec.mean, np.float32)
    std = np.asarray(spec.std, np.float32)
    x = (x * np.float32(spec.scale) - mean) / std
    if spec.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32)


def to_logit(output: np.ndarray, kind: str, positive_index: int) -> np.ndarray:
    """Per-item logits from a model output, whatever form the card says it has."""
    out = np.asarray(output, dtype=np.float64).reshape(output.shape[0], -1)
    if kind == "logit":
        return out[:, positive_index]
    if kind == "probability":
        p = np.clip(out[:, positive_index], 1e-7, 1 - 1e-7)
        return np.log(p / (1 - p))
    if kind == "softmax":
        z = out - out.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        q = np.clip(p[:, positive_index], 1e-7, 1 - 1e-7)
        result: np.ndarray = np.log(q / (1 - q))
        return result
    raise ValueError(f"unknown output kind '{kind}'")


class _OnnxClassifier(Detector):
    def _run(self, batch: np.ndarray) -> np.ndarray:
        session = self.runtime.session(self.card.file("model").path)
        name = session.get_inputs()[0].name
        outputs = session.run(None, {name: normalise(batch, self.card.input)})
        logits: np.ndarray = to_logit(
            outputs[0],
            str(self.card.output.get("kind", "logit")),
            int(self.card.output.get("positive_index", 0)),
        )
        return logits


@register("image_classifier")
class ImageClassifier(_OnnxClassifier):
    def analyze_image(self, rgb: np.ndarray) -> DetectorResult:
        h, w = self.card.input.size
        ih, iw = rgb.shape[:2]
        scale = max(h / ih, w / iw)
        resized = cv2.resize(
            rgb,
            (max(w, round(iw * scale)), max(h, round(ih * scale))),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
        )
        y, x = (resized.shape[0] - h) // 2, (resized.shape[1] - w) // 2
        crop = resized[y : y + h, x : x + w]
        logit = float(self._run(crop[None])[0])
        return self.result(True, self.card.calibration.apply(logit), raw_logit=round(logit, 4))


@register("patch_classifier")
class PatchClassifier(_OnnxClassifier):
    """Card ``[params]``: ``patches`` (grid cells, default 16), ``min_side`` (abstain below)."""

    def boxes(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """The patches' (left, top, right, bottom) on a regular grid over the image."""
        ph, pw = self.card.input.size
        n = int(self.card.params.get("patches", 16))
        rows = max(1, round(math.sqrt(n * height / width)))
        cols = max(1, math.ceil(n / rows))
        ys = np.linspace(0, height - ph, rows).round().astype(int) if height > ph else [0]
        xs = np.linspace(0, width - pw, cols).round().astype(int) if width > pw else [0]
        return [(int(x), int(y), int(x) + pw, int(y) + ph) for y in ys for x in xs]

    def patches(self, rgb: np.ndarray) -> np.ndarray:
        ih, iw = rgb.shape[:2]
        return np.stack([rgb[y0:y1, x0:x1] for x0, y0, x1, y1 in self.boxes(iw, ih)])

    def _too_small(self, width: int, height: int) -> DetectorResult | None:
        ph, pw = self.card.input.size
        min_side = int(self.card.params.get("min_side", min(ph, pw)))
        if min(height, width) < min_side or height < ph or width < pw:
            return self.result(
                False,
                notes=f"image too small ({width}x{height}); needs at least {min_side} px a side",
            )
        return None

    def _score(self, patches: np.ndarray) -> DetectorResult:
        logits = self._run(patches)
        mean_logit = float(np.mean(logits))
        return self.result(
            True,
            self.card.calibration.apply(mean_logit),
            patches=int(logits.size),
            mean_logit=round(mean_logit, 4),
            patch_logit_spread=round(float(np.std(logits)), 4),
        )

    def analyze_image(self, rgb: np.ndarray) -> DetectorResult:
        ih, iw = rgb.shape[:2]
        refusal = self._too_small(iw, ih)
        return refusal if refusal is not None else self._score(self.patches(rgb))

    def analyze_pixels(self, pixels: Pixels) -> DetectorResult:
        """Patches at native resolution, also when the working copy is reduced."""
        if not pixels.reduced:
            return self.analyze_image(pixels.oriented)
        width, height = pixels.native_size
        refusal = self._too_small(width, height)
        if refusal is not None:
            return refusal
        return self._score(np.stack([pixels.native_crop(b) for b in self.boxes(width, height)]))
