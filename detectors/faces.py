"""MTCNN face detection on onnxruntime (implementation ``mtcnn``).

The three networks come from ``models/faces_mtcnn`` (exported from facenet-pytorch's MIT-licensed
weights by ``models/faces_mtcnn/export.py``); the cascade around them (image pyramid, candidate
boxes, non-maximum suppression, refinement) follows facenet-pytorch's ``detect_face`` and runs in
numpy/OpenCV here. Card ``[params]``: ``min_face`` (px, default 20), ``thresholds`` (three stage
thresholds), ``factor`` (pyramid step), ``max_side`` (larger images are reduced first).
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from dataclasses import dataclass, replace

import cv2
import numpy as np

from detectors.base import NO_FACES, Detector, DetectorResult, Pixels
from detectors.plugins import register


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in image pixels
    score: float
    landmarks: tuple[tuple[float, float], ...]  # eyes, nose, mouth corners

    @property
    def size(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


def _nms(
    boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str = "union"
) -> np.ndarray:
    if boxes.size == 0:
        return np.zeros(0, dtype=int)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    keep = []
    while order.size > 0:
        i = order[-1]
        keep.append(i)
        rest = order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        if method == "min":
            overlap = inter / np.minimum(area[i], area[rest])
        else:
            overlap = inter / (area[i] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=int)


def _square(boxes: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0] = boxes[:, 0] + reg[:, 0] * w
    out[:, 1] = boxes[:, 1] + reg[:, 1] * h
    out[:, 2] = boxes[:, 2] + reg[:, 2] * w
    out[:, 3] = boxes[:, 3] + reg[:, 3] * h
    return out


def _norm(batch: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(
        ((batch.astype(np.float32) - 127.5) * 0.0078125).transpose(0, 3, 1, 2)
    )


_last_detection = threading.local()


def clear_face_cache() -> None:
    """Forget this thread's last detection (benchmarks time the cascade, not the cache)."""
    _last_detection.value = None


def _fingerprint(rgb: np.ndarray) -> tuple[object, ...]:
    """Identifies an image: its shape and a sha256 of all its pixels (a few milliseconds at 2 MP,
    against tens for the cascade; a cryptographic hash, so a crafted frame cannot pass for the
    previous one)."""
    return (rgb.shape, hashlib.sha256(np.ascontiguousarray(rgb).data).digest())


class _Detection:
    """One thread's last answer, and how to know the image again.

    A read-only array (the pipeline's decoded images and frames) is known by identity: it is
    the same live object, whose pixels cannot have changed, so the two detectors need not hash
    all its pixels. Any other array is known by :func:`_fingerprint`.
    """

    def __init__(self, key: tuple[object, ...], rgb: np.ndarray, faces: tuple[Face, ...]) -> None:
        self.key, self.faces = key, faces
        self._ref = None if rgb.flags.writeable else weakref.ref(rgb)
        self._fingerprint = _fingerprint(rgb) if self._ref is None else None

    def matches(self, key: tuple[object, ...], rgb: np.ndarray) -> bool:
        if key != self.key:
            return False
        if self._ref is not None:
            return not rgb.flags.writeable and self._ref() is rgb
        return self._fingerprint == _fingerprint(rgb)


@register("mtcnn")
class Mtcnn(Detector):
    def _params(self) -> tuple[float, tuple[float, float, float], float, int]:
        p = self.card.params
        t = p.get("thresholds", [0.6, 0.7, 0.7])
        return (
            float(p.get("min_face", 20)),
            (float(t[0]), float(t[1]), float(t[2])),
            float(p.get("factor", 0.709)),
            int(p.get("max_side", 1920)),
        )

    def _crops(
        self, rgb: np.ndarray, boxes: np.ndarray, side: int
    ) -> tuple[np.ndarray, np.ndarray]:
        h, w = rgb.shape[:2]
        ints = np.trunc(boxes[:, :4]).astype(int)
        x = np.maximum(ints[:, 0], 1)
        y = np.maximum(ints[:, 1], 1)
        ex = np.minimum(ints[:, 2], w)
        ey = np.minimum(ints[:, 3], h)
        valid = (ey > y - 1) & (ex > x - 1) & (ey - (y - 1) > 1) & (ex - (x - 1) > 1)
        crops = [
            cv2.resize(
                rgb[y[k] - 1 : ey[k], x[k] - 1 : ex[k]], (side, side), interpolation=cv2.INTER_AREA
            )
            for k in np.flatnonzero(valid)
        ]
        return (np.stack(crops) if crops else np.zeros((0, side, side, 3), np.uint8)), valid

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces in ``rgb``, strongest first. The last image's answer is kept per thread, so
        the face detector and the face-manipulation detector (which also needs the faces)
        run the cascade once per image or frame."""
        key = (
            self._params(),
            tuple(self.card.file(r).sha256 for r in ("pnet", "rnet", "onet")),
        )
        last: _Detection | None = getattr(_last_detection, "value", None)
        if last is not None and last.matches(key, rgb):
            return list(last.faces)
        faces = self._detect(rgb)
        _last_detection.value = _Detection(key, rgb, tuple(faces))
        return faces

    def _detect(self, rgb: np.ndarray) -> list[Face]:
        min_face, thresholds, factor, max_side = self._params()
        reduce = 1.0
        if max(rgb.shape[:2]) > max_side:
            reduce = max_side / max(rgb.shape[:2])
            rgb = cv2.resize(
                rgb,
                (round(rgb.shape[1] * reduce), round(rgb.shape[0] * reduce)),
                interpolation=cv2.INTER_AREA,
            )
        h, w = rgb.shape[:2]
        pnet = self.runtime.session(self.card.file("pnet").path)
        rnet = self.runtime.session(self.card.file("rnet").path)
        onet = self.runtime.session(self.card.file("onet").path)

        # Stage 1: proposal network over an image pyramid.
        m = 12.0 / min_face
        scales = []
        size = min(h, w) * m
        scale = m
        while size >= 12:
            scales.append(scale)
            scale *= factor
            size *= factor
        found = []
        for s in scales:
            sh, sw = int(h * s + 1), int(w * s + 1)
            im = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
            reg, prob = pnet.run(None, {"image": _norm(im[None])})
            probs = prob[0, 1]
            ys, xs = np.nonzero(probs >= thresholds[0])
            if ys.size == 0:
                continue
            bb = np.stack([xs, ys], axis=1).astype(np.float64)
            q1 = np.floor((2 * bb + 1) / s)
            q2 = np.floor((2 * bb + 12) / s)
            cand = np.hstack([q1, q2, probs[ys, xs][:, None], reg[0][:, ys, xs].T])
            found.append(cand[_nms(cand[:, :4], cand[:, 4], 0.5)])
        if not found:
            return []
        boxes = np.vstack(found)
        boxes = boxes[_nms(boxes[:, :4], boxes[:, 4], 0.7)]
        rw = boxes[:, 2] - boxes[:, 0]
        rh = boxes[:, 3] - boxes[:, 1]
        refined = np.stack(
            [
                boxes[:, 0] + boxes[:, 5] * rw,
                boxes[:, 1] + boxes[:, 6] * rh,
                boxes[:, 2] + boxes[:, 7] * rw,
                boxes[:, 3] + boxes[:, 8] * rh,
                boxes[:, 4],
            ],
            axis=1,
        )
        boxes = _square(refined)

        # Stage 2: refinement network on 24x24 crops.
        crops, valid = self._crops(rgb, boxes, 24)
        boxes = boxes[valid]
        if len(boxes) == 0:
            return []
        reg, prob = rnet.run(None, {"image": _norm(crops)})
        keep = prob[:, 1] > thresholds[1]
        boxes = np.hstack([boxes[keep, :4], prob[keep, 1:2]])
        reg = reg[keep]
        pick = _nms(boxes[:, :4], boxes[:, 4], 0.7)
        boxes = _square(_regress(boxes[pick], reg[pick]))
        if len(boxes) == 0:
            return []

        # Stage 3: output network on 48x48 crops, with landmarks.
        crops, valid = self._crops(rgb, boxes, 48)
        boxes = boxes[valid]
        if len(boxes) == 0:
            return []
        reg, marks, prob = onet.run(None, {"image": _norm(crops)})
        keep = prob[:, 1] > thresholds[2]
        boxes = np.hstack([boxes[keep, :4], prob[keep, 1:2]])
        reg, marks = reg[keep], marks[keep]
        bw = boxes[:, 2] - boxes[:, 0] + 1
        bh = boxes[:, 3] - boxes[:, 1] + 1
        px = bw[:, None] * marks[:, :5] + boxes[:, 0:1] - 1
        py = bh[:, None] * marks[:, 5:10] + boxes[:, 1:2] - 1
        boxes = _regress(boxes, reg)
        pick = _nms(boxes[:, :4], boxes[:, 4], 0.7, "min")
        faces = []
        for k in pick:
            box = tuple(float(v) / reduce for v in boxes[k, :4])
            lm = tuple((float(px[k, i]) / reduce, float(py[k, i]) / reduce) for i in range(5))
            faces.append(Face(box=box, score=float(boxes[k, 4]), landmarks=lm))  # type: ignore[arg-type]
        faces.sort(key=lambda f: -f.score)
        return faces

    def analyze_pixels(self, pixels: Pixels) -> DetectorResult:
        """Faces found on the working copy, with boxes in native pixels."""
        result = self.analyze_image(pixels.oriented)
        if not pixels.reduced:
            return result
        factor = pixels.native_size[0] / pixels.oriented.shape[1]
        boxes = [
            {**b, "box": [round(v * factor, 1) for v in b["box"]]}
            for b in result.details.get("boxes", [])
        ]
        return replace(result, details={**result.details, "boxes": boxes})

    def analyze_image(self, rgb: np.ndarray) -> DetectorResult:
        faces = self.detect(rgb)
        return self.result(
            True,
            None,
            notes=f"{len(faces)} face(s) found" if faces else NO_FACES,
            faces=len(faces),
            boxes=[
                {"box": [round(v, 1) for v in f.box], "score": round(f.score, 4)}
                for f in faces[:32]
            ],
        )
