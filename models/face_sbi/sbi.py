"""Self-blended images (Shiohara and Yamasaki, CVPR 2022): pseudo-fakes made from real faces.

A real face is blended with a changed copy of itself through a mask grown from its five MTCNN
landmarks. The copy is changed the way a face swap's generated face differs from the frame it is
pasted into: colour and brightness shift, blur or sharpening, a lower resolution, a shift of a
few pixels and a slight rescale; the mask is deformed, feathered and sometimes partly
transparent. Shared by the training scripts of this folder.
"""

from __future__ import annotations

import io
import random

import cv2
import numpy as np
from PIL import Image

SIZE = 160


def model_input(crop: np.ndarray, size: int) -> np.ndarray:
    """A face crop at a model's input size (area filter down, cubic up)."""
    if crop.shape[0] == size:
        return crop
    interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interp)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def face_mask(shape: tuple[int, int], marks: np.ndarray, rng: random.Random) -> np.ndarray:
    """A soft inner-face mask grown from five landmarks (eyes, nose, mouth corners)."""
    h, w = shape
    le, re_, nose, lm, rm = marks
    eye_c, mouth_c = (le + re_) / 2, (lm + rm) / 2
    down = mouth_c - eye_c
    d = float(np.linalg.norm(down)) or 1.0
    down = down / d
    side = np.array([-down[1], down[0]])
    eye_dist = float(np.linalg.norm(re_ - le)) or d
    grow = rng.uniform(0.15, 0.55)
    pts = [
        le - side * eye_dist * grow - down * d * rng.uniform(0.3, 0.8),
        re_ + side * eye_dist * grow - down * d * rng.uniform(0.3, 0.8),
        le - side * eye_dist * grow * 1.2 + down * d * 0.5,
        re_ + side * eye_dist * grow * 1.2 + down * d * 0.5,
        lm - side * eye_dist * grow + down * d * rng.uniform(0.1, 0.5),
        rm + side * eye_dist * grow + down * d * rng.uniform(0.1, 0.5),
        mouth_c + down * d * rng.uniform(0.3, 0.9),
        nose,
    ]
    hull = cv2.convexHull(np.asarray(pts, np.float32).round().astype(np.int32))
    mask = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(mask, hull, 1.0)
    k = max(3, int(eye_dist * rng.uniform(0.05, 0.25)) | 1)
    kernel = np.ones((k, k), np.uint8)
    mask = cv2.erode(mask, kernel) if rng.random() < 0.5 else cv2.dilate(mask, kernel)
    sigma = eye_dist * rng.uniform(0.05, 0.35)
    mask = cv2.GaussianBlur(mask, (0, 0), max(sigma, 0.5))
    if rng.random() < 0.25:
        mask = mask * rng.uniform(0.5, 1.0)
    return mask[..., None]


def change_source(img: np.ndarray, rng: random.Random) -> np.ndarray:
    """What distinguishes a pasted generated face from its frame."""
    out = img.astype(np.float32)
    out = out * np.array([rng.uniform(0.9, 1.1) for _ in range(3)], np.float32)
    out = out + rng.uniform(-12, 12)
    out = (out - out.mean()) * rng.uniform(0.9, 1.1) + out.mean()
    out = np.clip(out, 0, 255).astype(np.uint8)
    r = rng.random()
    h, w = out.shape[:2]
    if r < 0.35:
        f = rng.uniform(0.35, 0.8)
        small = cv2.resize(
            out, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA
        )
        out = cv2.resize(
            small, (w, h), interpolation=rng.choice([cv2.INTER_LINEAR, cv2.INTER_CUBIC])
        )
    elif r < 0.55:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    elif r < 0.75:
        blur = cv2.GaussianBlur(out, (0, 0), 1.0)
        out = cv2.addWeighted(out, 1.5, blur, -0.5, 0)
    # A shift and slight rescale: the pasted face never lands exactly.
    s = rng.uniform(0.96, 1.04)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-2, 2), s)
    m[:, 2] += [rng.uniform(-0.025, 0.025) * w, rng.uniform(-0.025, 0.025) * h]
    return cv2.warpAffine(out, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def sample(
    crop: np.ndarray, marks: np.ndarray, fake: bool, rng: random.Random, size: int = SIZE
) -> np.ndarray:
    """One training face: resized to a random working size (faces come at every size), blended
    with itself when ``fake``, flipped half the time, JPEG-compressed 70% of the time (both
    classes), at ``size`` px."""
    side = crop.shape[0]
    work = rng.randint(size, max(size, min(side, 384)))
    img = cv2.resize(
        crop, (work, work), interpolation=cv2.INTER_AREA if side > work else cv2.INTER_CUBIC
    )
    marks = marks * (work / side)
    if fake:
        mask = face_mask((work, work), marks, rng)
        img = (change_source(img, rng) * mask + img * (1 - mask)).round().astype(np.uint8)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    if rng.random() < 0.7:
        img = jpeg(np.ascontiguousarray(img), rng.randint(60, 98))
    return model_input(np.ascontiguousarray(img), size)


def self_blend(crop: np.ndarray, marks: np.ndarray, rng: random.Random) -> np.ndarray:
    """A deterministic (given ``rng``) self-blend of a face crop at its own size."""
    side = crop.shape[0]
    mask = face_mask((side, side), marks, rng)
    return (change_source(crop, rng) * mask + crop * (1 - mask)).round().astype(np.uint8)


def generated_swap(
    target: np.ndarray,
    target_marks: np.ndarray,
    source: np.ndarray,
    source_marks: np.ndarray,
    rng: random.Random,
) -> np.ndarray:
    """A face swap imitated without any swapping tool: a GENERATED face (cut from an AI image)
    aligned onto a real face by their landmarks (a similarity transform), its colours matched to
    the target's inside the mask, and pasted through the same feathered landmark mask as a
    self-blend. Unlike a self-blend, identity and texture change too, as in a real swap."""
    side = target.shape[0]
    m, _ = cv2.estimateAffinePartial2D(
        np.asarray(source_marks, np.float32), np.asarray(target_marks, np.float32)
    )
    if m is None:
        return self_blend(target, target_marks, rng)
    warped = cv2.warpAffine(source, m, (side, side), borderMode=cv2.BORDER_REFLECT)
    mask = face_mask((side, side), target_marks, rng)
    inside = mask[..., 0] > 0.5
    out = warped.astype(np.float32)
    if inside.sum() > 16:
        t, s = target[inside].astype(np.float32), out[inside]
        out = (out - s.mean(axis=0)) / (s.std(axis=0) + 1e-3) * t.std(axis=0) + t.mean(axis=0)
    out = np.clip(out, 0, 255)
    if rng.random() < 0.5:  # generated faces are often pasted at a lower resolution
        f = rng.uniform(0.4, 0.8)
        small = cv2.resize(out, (max(8, int(side * f)),) * 2, interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (side, side), interpolation=cv2.INTER_LINEAR)
    return (out * mask + target * (1 - mask)).round().astype(np.uint8)
