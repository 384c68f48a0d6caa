"""Face-manipulation detection on each face (implementation ``face_blend``).

Face swaps and most reenactment methods paste a generated face into a real frame. What they
leave is the seam: a blending boundary around the inner face where colour, sharpness and noise
change. Following Shiohara and Yamasaki (CVPR 2022, "Detecting Deepfakes with Self-Blended
Images"), the model learned that seam from real faces alone: each training fake is a real face
blended with a slightly transformed copy of itself inside a landmark mask, so it never learned a
particular swapping tool's look and carries no one's likeness.

Faces come from the MTCNN cascade (the card lists the ``faces_mtcnn`` networks, shared with the
face detector, which runs once per image). Each face of at least ``min_face`` px is cut as the
square of 1.4x its box (:func:`cut_face`), resized to the model's input and scored; the image's
score is the highest face's, and the report names that face's box. No face: not applicable
(the report's ``no_faces`` abstention), so the AI-image detector still speaks for the image.

Card ``[params]``: the MTCNN ones (``min_face`` etc., as ``faces_mtcnn``), ``min_face_score``
(px, faces smaller are not scored; default 48), ``max_faces`` (default 8).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from detectors.base import DetectorResult, Pixels
from detectors.classifiers import normalise, to_logit
from detectors.faces import Face, Mtcnn
from detectors.registry import register

#: The crop around a face: this multiple of the face box's longer side, centred on the box.
MARGIN = 1.4


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


def model_input(crop: np.ndarray, size: int) -> np.ndarray:
    """A face crop at the model's input size (area filter down, cubic up)."""
    if crop.shape[0] == size:
        return crop
    interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interp)


@register("face_blend")
class FaceBlend(Mtcnn):
    def _face_params(self) -> tuple[int, int]:
        p = self.card.params
        return int(p.get("min_face_score", 48)), int(p.get("max_faces", 8))

    def score_faces(self, rgb: np.ndarray, faces: Sequence[Face]) -> list[float]:
        """Calibrated score of each face, in order."""
        if not faces:
            return []
        size = self.card.input.size[0]
        batch = np.stack([model_input(cut_face(rgb, f.box, f.landmarks)[0], size) for f in faces])
        session = self.runtime.session(self.card.file("model").path)
        name = session.get_inputs()[0].name
        out = session.run(None, {name: normalise(batch, self.card.input)})[0]
        logits = to_logit(out, str(self.card.output.get("kind", "logit")), 0)
        return [self.card.calibration.apply(float(z)) for z in logits]

    def analyze_image(self, rgb: np.ndarray) -> DetectorResult:
        min_side, max_faces = self._face_params()
        found = self.detect(rgb)
        if not found:
            return self.result(False, notes="no faces found", faces=0)
        faces = [f for f in found if f.size >= min_side][:max_faces]
        if not faces:
            largest = max(f.size for f in found)
            return self.result(
                False,
                notes=f"faces too small to judge (largest {largest:.0f} px; needs {min_side})",
                faces=0,
            )
        scores = self.score_faces(rgb, faces)
        top = int(np.argmax(scores))
        return self.result(
            True,
            scores[top],
            notes=f"highest of {len(faces)} face(s)" if len(faces) > 1 else "one face",
            faces=len(faces),
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
        details["face_scores"] = [
            {**f, "box": [round(v * k, 1) for v in f["box"]]} for f in details["face_scores"]
        ]
        from dataclasses import replace

        return replace(result, details=details)
