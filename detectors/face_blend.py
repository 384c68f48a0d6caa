"""Face-manipulation detection on each face (implementation ``face_blend``).

Face swaps and most reenactment methods put a generated face into a real frame. Two traces are
learnable without any swapping tool's output: the seam a paste leaves (colour, sharpness and
noise changing around the inner face), taught with self-blended images (Shiohara and Yamasaki,
CVPR 2022: a real face blended with a changed copy of itself inside a landmark mask), and the
look of a generated face, taught with faces cut from AI-generated images. The model is a linear
probe on frozen CLIP ViT-B/16 features of the face crop (:func:`face_features`); which of the two
kinds of training fakes it uses is chosen on validation data (``models/face_sbi/train.py``).

Faces come from the MTCNN cascade (the card lists the ``faces_mtcnn`` networks, shared with the
face detector, which runs once per image). Each face of at least ``min_face_score`` px is cut as
the square of 1.4x its box (:func:`cut_face`) and scored; the image's score is the highest
face's, and the report names that face's box. No face: not applicable (the report's
``no_faces`` abstention), so the AI-image detector still speaks for the image.

Card files: ``pnet``/``rnet``/``onet`` (``../faces_mtcnn``), ``encoder`` (the CLIP image tower,
``../ai_clip``), ``head`` (JSON: ``mean``, ``scale``, ``weights``, ``bias``). Card ``[params]``:
the MTCNN ones (as ``faces_mtcnn``), ``min_face_score`` (px, smaller faces are not judged;
default 48), ``min_face_confidence`` (faces the cascade found less surely are not judged: the
training faces were found at 0.95 or more), ``max_faces`` (default 8). The report gives the
judged faces' boxes in the pixels of ``image_size``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property
from typing import Any

import cv2
import numpy as np

from detectors.base import NO_FACES, DetectorResult, Pixels
from detectors.clip_probe import LinearHead, global_view, to_input, unit
from detectors.faces import Face, Mtcnn
from detectors.plugins import register

#: The crop around a face: this multiple of the face box's longer side, centred on the box.
MARGIN = 1.4
#: Larger crops are reduced to this first, as the training crops were.
CROP_MAX_SIDE = 512


def face_square(box: Sequence[float], margin: float = MARGIN) -> tuple[int, int, int]:
    """(left, top, side) of the square crop around a face box."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * margin
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return round(cx - side / 2), round(cy - side / 2), max(1, round(side))


def cut_face(
    rgb: np.ndarray,
    box: Sequence[float],
    landmarks: Sequence[tuple[float, float]],
    max_side: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The face's square crop (edges replicated where it leaves the image) and its landmarks in
    crop coordinates. With ``max_side``, larger crops are reduced (area filter)."""
    left, top, side = face_square(box)
    h, w = rgb.shape[:2]
    pad = max(0, -left, -top, left + side - w, top + side - h)
    src = rgb
    if pad:
        src = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = src[top + pad : top + pad + side, left + pad : left + pad + side]
    marks = np.asarray(landmarks, np.float32) - np.asarray([left, top], np.float32)
    if max_side is not None and side > max_side:
        factor = max_side / side
        crop = cv2.resize(crop, (max_side, max_side), interpolation=cv2.INTER_AREA)
        marks = marks * factor
    return np.ascontiguousarray(crop), marks


def face_features(session: Any, crops: Sequence[np.ndarray]) -> np.ndarray:
    """Frozen CLIP features of face crops: the unit image embedding, and the mean and standard
    deviation over the last layer's patch tokens (a seam or a generated face is local; the
    tokens' spread is where a local change shows). ``N x (512 + 768 + 768)``."""
    name = session.get_inputs()[0].name
    out = []
    for i in range(0, len(crops), 8):
        views = np.stack([global_view(c) for c in crops[i : i + 8]])
        emb, tokens = session.run(None, {name: to_input(views)})[:2]
        patches = tokens[:, 1:].astype(np.float64)
        out.append(
            np.concatenate(
                [unit(emb.astype(np.float64)), patches.mean(axis=1), patches.std(axis=1)], axis=1
            )
        )
    return np.concatenate(out) if out else np.zeros((0, 2048))


@register("face_blend")
class FaceBlend(Mtcnn):
    @cached_property
    def head(self) -> LinearHead:
        return LinearHead.load(self.card.file("head").path)

    def _face_params(self) -> tuple[int, int, float]:
        p = self.card.params
        return (
            int(p.get("min_face_score", 48)),
            int(p.get("max_faces", 8)),
            float(p.get("min_face_confidence", 0.0)),
        )

    def score_faces(self, rgb: np.ndarray, faces: Sequence[Face]) -> list[float]:
        """Calibrated score of each face, in order."""
        if not faces:
            return []
        session = self.runtime.session(self.card.file("encoder").path)
        # As the training crops were cut (models/face_sbi/crops.py): at most 512 px a side.
        crops = [cut_face(rgb, f.box, f.landmarks, max_side=CROP_MAX_SIDE)[0] for f in faces]
        x = face_features(session, crops)
        return [self.card.calibration.apply(float(z)) for z in self.head.logits(x)]

    def analyze_image(self, rgb: np.ndarray) -> DetectorResult:
        min_side, max_faces, min_confidence = self._face_params()
        found = self.detect(rgb)
        size = [int(rgb.shape[1]), int(rgb.shape[0])]
        if not found:
            return self.result(False, notes=NO_FACES, faces=0, faces_found=0)
        # Only faces like those it was trained and calibrated on: large and confidently found.
        faces = [f for f in found if f.size >= min_side and f.score >= min_confidence]
        faces = faces[:max_faces]
        if not faces:
            largest = max(f.size for f in found)
            return self.result(
                False,
                notes=(
                    f"no face clear enough to judge (largest {largest:.0f} px; needs "
                    f"{min_side} px and detector confidence {min_confidence:g})"
                ),
                faces=0,
                faces_found=len(found),
            )
        scores = self.score_faces(rgb, faces)
        top = int(np.argmax(scores))
        return self.result(
            True,
            scores[top],
            notes=f"highest of {len(faces)} face(s)" if len(faces) > 1 else "one face",
            faces=len(faces),
            faces_found=len(found),
            image_size=size,
            face_box=[round(v, 1) for v in faces[top].box],
            face_scores=[
                {"box": [round(v, 1) for v in f.box], "score": round(s, 4)}
                for f, s in zip(faces, scores, strict=True)
            ],
        )

    def analyze_pixels(self, pixels: Pixels) -> DetectorResult:
        """Faces judged on the working copy; boxes reported in native pixels."""
        result = self.analyze_image(pixels.oriented)
        if not pixels.reduced or not result.applicable:
            return result
        k = pixels.native_size[0] / pixels.oriented.shape[1]
        details = dict(result.details)
        details["face_box"] = [round(v * k, 1) for v in details["face_box"]]
        details["image_size"] = list(pixels.native_size)
        details["face_scores"] = [
            {**f, "box": [round(v * k, 1) for v in f["box"]]} for f in details["face_scores"]
        ]
        return replace(result, details=details)
