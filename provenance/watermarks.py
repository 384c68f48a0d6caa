"""Invisible watermarks embedded by Stable Diffusion reference code (invisible-watermark dwtDct).

The reference embedder (``imwatermark`` ``EmbedMaxDct``, method ``dwtDct``, scales 0/36/36)
works on the U channel of OpenCV's YUV: one level of Haar DWT, then for every 4x4 block of the
approximation band it quantises the largest-magnitude non-DC coefficient so that
``|value| mod 36`` falls in the upper half for a 1 bit and the lower half for a 0 bit. Bits
repeat over the blocks in row-major order. The decoder reads every block, averages the votes per
bit position and compares the result with each known payload:

============  ==========================================  ======
scheme        payload                                     bits
============  ==========================================  ======
``sd1``       bytes ``StableDiffusionV1`` (SD 1.x scripts)  136
``sd2``       bytes ``SDV2`` (SD 2.x scripts)               32
``sdxl``      0xB3EC907BB19E (SDXL, diffusers)              48
============  ==========================================  ======

On an unmarked image each bit matches by chance with probability about 1/2, so the number of
matching bits follows a binomial law; the detection threshold for each scheme is the smallest
count whose chance probability, multiplied by the number of sizes tried, stays below
:data:`TARGET_FALSE_POSITIVE_RATE`. ``benchmarks/watermark_eval.py`` measures the real
false-positive distribution and robustness on photographs and records it in
``docs/measurements/watermarks.md``.

This module is pure numpy/PyWavelets/OpenCV; there is no torch anywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

SCALE = 36
BLOCK = 4
#: Chance probability allowed per scheme and image, all tried sizes together.
TARGET_FALSE_POSITIVE_RATE = 1e-6
#: Each bit position must be voted on by at least this many blocks.
MIN_VOTES = 4

# Sizes that generators emit; a rescaled image is resized back to those of its aspect ratio.
GENERATOR_SIZES: tuple[tuple[int, int], ...] = (
    (512, 512),
    (768, 768),
    (1024, 1024),
    (512, 768),
    (768, 512),
    (640, 640),
    (1152, 896),
    (896, 1152),
    (1216, 832),
    (832, 1216),
    (1344, 768),
    (768, 1344),
    (1536, 640),
    (640, 1536),
)


def _bits_of_bytes(data: bytes) -> tuple[int, ...]:
    return tuple(int(b) for b in np.unpackbits(np.frombuffer(data, dtype=np.uint8)))


def _bits_of_int(value: int, length: int) -> tuple[int, ...]:
    return tuple(int(c) for c in format(value, f"0{length}b"))


@dataclass(frozen=True)
class Scheme:
    name: str
    label: str
    bits: tuple[int, ...]
    payload: str


SCHEMES: tuple[Scheme, ...] = (
    Scheme(
        "sd1",
        "Stable Diffusion 1.x (invisible-watermark, StableDiffusionV1)",
        _bits_of_bytes(b"StableDiffusionV1"),
        "StableDiffusionV1",
    ),
    Scheme(
        "sd2", "Stable Diffusion 2.x (invisible-watermark, SDV2)", _bits_of_bytes(b"SDV2"), "SDV2"
    ),
    Scheme(
        "sdxl",
        "Stable Diffusion XL (invisible-watermark, 0xB3EC907BB19E)",
        _bits_of_int(0xB3EC907BB19E, 48),
        "0xB3EC907BB19E",
    ),
)
SCHEMES_BY_NAME = {s.name: s for s in SCHEMES}


@dataclass(frozen=True)
class WatermarkFinding:
    scheme: str
    label: str
    detected: bool
    confidence: float  # 1 - chance probability (all sizes tried), 0..1
    payload: str | None  # the scheme's payload when detected
    bits_matched: int
    bits_total: int
    threshold: int
    p_chance: float
    size_tried: str  # "original" or "WxH" the image was resized back to
    applicable: bool = True
    note: str | None = None


def binomial_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2.0**n


@cache
def threshold(n_bits: int, tries: int = 1, target: float = TARGET_FALSE_POSITIVE_RATE) -> int:
    """Smallest bit count whose chance probability times ``tries`` is at most ``target``."""
    for k in range(n_bits // 2, n_bits + 1):
        if binomial_tail(k, n_bits) * tries <= target:
            return k
    return n_bits + 1


def _u_channel(rgb: np.ndarray) -> np.ndarray:
    """The reference's U plane: OpenCV's YUV of the uint8 image, cropped to multiples of 4.

    The reference converts BGR; converting the RGB array directly gives the same plane (tested)
    without a reversed copy of the image.
    """
    rows, cols = rgb.shape[0] // 4 * 4, rgb.shape[1] // 4 * 4
    if rows == 0 or cols == 0:  # OpenCV refuses an empty image
        return np.zeros((rows, cols), dtype=np.uint8)
    yuv = cv2.cvtColor(np.ascontiguousarray(rgb[:rows, :cols]), cv2.COLOR_RGB2YUV)
    u: np.ndarray = yuv[:, :, 1]
    return u


def _blocks(band: np.ndarray) -> np.ndarray:
    """4x4 blocks of a 2-D band in row-major block order, flattened: shape (N, 16)."""
    nr, nc = band.shape[0] // BLOCK, band.shape[1] // BLOCK
    cropped = band[: nr * BLOCK, : nc * BLOCK]
    out: np.ndarray = cropped.reshape(nr, BLOCK, nc, BLOCK).transpose(0, 2, 1, 3).reshape(-1, 16)
    return out


#: The Haar filter tap, as PyWavelets holds it.
_HAAR = np.float64(0.7071067811865476)


def haar_approximation(plane: np.ndarray) -> np.ndarray:
    """The approximation band of one level of ``pywt.dwt2(plane, "haar")``, equal to it bit
    for bit (tested) and several times faster: PyWavelets filters along the first axis, then
    the second, each output the sum of two taps' products, computed here in the same order."""
    even = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    x = plane[: even[0], : even[1]]
    cols = _HAAR * x[1::2, :] + _HAAR * x[0::2, :]  # uint8 rises to float64 exactly
    band: np.ndarray = _HAAR * cols[:, 1::2] + _HAAR * cols[:, 0::2]
    return band


def block_scores(rgb: np.ndarray) -> np.ndarray:
    """One 0/1 vote per 4x4 block of the U-channel approximation band (decode order).

    A Haar approximation value is half the sum of its four pixels, up to a rounding error far
    below 1e-9. The vote (the largest value of the block, its first excepted: above or below 18
    modulo 36) is therefore read from the integer sums, except in blocks whose largest sum is a
    multiple of 36 (the vote's boundaries, where the rounding decides): those are computed in
    floating point exactly as the reference does. The votes equal the reference's (tested).
    """
    u = _u_channel(rgb)
    if u.shape[0] < 8 or u.shape[1] < 8:
        return np.zeros(0, dtype=np.float64)
    nr, nc = u.shape[0] // 8, u.shape[1] // 8
    x = u[: nr * 8, : nc * 8].astype(np.uint16)
    sums = x[0::2, 0::2] + x[0::2, 1::2] + x[1::2, 0::2] + x[1::2, 1::2]
    top = _largest_but_first(sums)
    scores: np.ndarray = ((top % (2 * SCALE)) > SCALE).astype(np.float64)
    edge = np.flatnonzero(top % SCALE == 0)
    if edge.size:
        block_row, block_col = np.divmod(edge, nc)
        # Only those blocks' 8x8 patches are gathered (N x 8 x 8).
        patches = u[: nr * 8, : nc * 8].reshape(nr, 8, nc, 8)[block_row, :, block_col, :]
        flat = haar_approximation_blocks(patches)
        pos = np.argmax(np.abs(flat[:, 1:]), axis=1) + 1
        vals = np.abs(flat[np.arange(flat.shape[0]), pos])
        scores[edge] = (vals % SCALE) > 0.5 * SCALE
    return scores


def _largest_but_first(band: np.ndarray) -> np.ndarray:
    """Each 4x4 block's largest value, its first excepted, in block order: ``_blocks(band)[:,
    1:].max(axis=1)`` by maxima of strided views (no transposed copy of the band)."""
    rest = np.maximum(np.maximum(band[1::4], band[2::4]), band[3::4])  # rows 1-3 of each block
    first_row = band[0::4]
    rest = np.maximum(
        np.maximum(rest[:, 0::4], rest[:, 1::4]), np.maximum(rest[:, 2::4], rest[:, 3::4])
    )
    first = np.maximum(np.maximum(first_row[:, 1::4], first_row[:, 2::4]), first_row[:, 3::4])
    top: np.ndarray = np.maximum(rest, first).reshape(-1).astype(np.int32)
    return top


def haar_approximation_blocks(patches: np.ndarray) -> np.ndarray:
    """:func:`haar_approximation` of each 8x8 patch (``N x 8 x 8``), as ``N x 16`` in the
    band's row-major order: the same operations, so the same values, as over the whole plane."""
    cols = _HAAR * patches[:, 1::2, :] + _HAAR * patches[:, 0::2, :]
    band = _HAAR * cols[:, :, 1::2] + _HAAR * cols[:, :, 0::2]
    flat: np.ndarray = band.reshape(-1, 16)
    return flat


def decode_bits(scores: np.ndarray, length: int) -> np.ndarray | None:
    """Average the block votes per bit position; ``None`` when too few blocks vote."""
    if scores.size < length * MIN_VOTES:
        return None
    idx = np.arange(scores.size) % length
    avg = np.bincount(idx, weights=scores, minlength=length) / np.bincount(idx, minlength=length)
    bits: np.ndarray = (avg * 255 > 127).astype(np.int8)
    return bits


def embed(rgb: np.ndarray, bits: tuple[int, ...] | list[int]) -> np.ndarray:
    """Embed ``bits`` as the reference ``dwtDct`` encoder does (same arithmetic, same quirks).

    Used by the samples script and tests to make marked images from the project's own pictures.
    Returns a new RGB uint8 array.
    """
    import pywt  # only the embedder needs the inverse transform

    bgr = np.ascontiguousarray(rgb[..., ::-1])
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)
    rows, cols = yuv.shape[0] // 4 * 4, yuv.shape[1] // 4 * 4
    ca, (h, v, d) = pywt.dwt2(yuv[:rows, :cols, 1], "haar")
    nr, nc = ca.shape[0] // BLOCK, ca.shape[1] // BLOCK
    wm = np.asarray(bits, dtype=np.float64)
    flat = _blocks(ca).copy()
    pos = np.argmax(np.abs(flat[:, 1:]), axis=1) + 1
    rows_idx = np.arange(flat.shape[0])
    vals = flat[rows_idx, pos]
    bit = wm[rows_idx % wm.size]
    magnitude = (np.abs(vals) // SCALE + 0.25 + 0.5 * bit) * SCALE
    flat[rows_idx, pos] = np.where(vals >= 0.0, magnitude, -magnitude)
    ca[: nr * BLOCK, : nc * BLOCK] = (
        flat.reshape(nr, nc, BLOCK, BLOCK).transpose(0, 2, 1, 3).reshape(nr * BLOCK, nc * BLOCK)
    )
    # The reference reconstructs with the horizontal and vertical details swapped and stores
    # the float result into the uint8 plane; both are kept so marks match real generator output.
    yuv[:rows, :cols, 1] = pywt.idwt2((ca, (v, h, d)), "haar")
    out: np.ndarray = cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR)[..., ::-1]
    return np.ascontiguousarray(out)


MAX_RESIZE_TRIES = 4
#: Larger images are only decoded after resizing back to generator sizes: no generator emits
#: them, and decode time grows with the pixel count (benchmarks/watermark_eval.py: 8 ms at
#: 512x512, 39 ms at 1024x1024).
MAX_ORIGINAL_PIXELS = 2048 * 2048


def _candidate_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """Generator sizes of the image's aspect ratio (within 1%) to resize back to.

    Only for images whose own size is not a generator size: those were rescaled on the way,
    and resizing back restores much of the mark. At most :data:`MAX_RESIZE_TRIES`, nearest
    sizes first.
    """
    if (width, height) in GENERATOR_SIZES:
        return []
    ratio = width / height
    # Within a factor of two: a mark does not come back from a thumbnail.
    out = [
        (w, h)
        for w, h in GENERATOR_SIZES
        if abs(w / h - ratio) / ratio < 0.01 and 0.5 <= w / width <= 2.0
    ]
    out.sort(key=lambda wh: abs(wh[0] - width))
    return out[:MAX_RESIZE_TRIES]


def detect(
    rgb: np.ndarray,
    schemes: tuple[Scheme, ...] = SCHEMES,
    *,
    native_size: tuple[int, int] | None = None,
) -> tuple[WatermarkFinding, ...]:
    """Look for every scheme in an RGB uint8 image, also at generator sizes of its aspect ratio.

    ``native_size`` (width, height) is the file's own size when ``rgb`` is a reduced working
    copy: the sizes to try are chosen from it, and the reduced pixels are never read as the
    original. The best-matching size is reported per scheme; thresholds account for every size
    tried.
    """
    height, width = rgb.shape[:2]
    reduced = native_size is not None and native_size != (width, height)
    if native_size is not None:
        width, height = native_size
    sizes: list[tuple[str, np.ndarray]] = []
    if width * height <= MAX_ORIGINAL_PIXELS and not reduced:
        sizes.append(("original", rgb))
    for w, h in _candidate_sizes(width, height):
        interp = cv2.INTER_CUBIC if w > width else cv2.INTER_AREA
        sizes.append((f"{w}x{h}", cv2.resize(rgb, (w, h), interpolation=interp)))
    tries = max(1, len(sizes))
    best: dict[str, tuple[int, str]] = {}
    applicable: dict[str, bool] = {s.name: False for s in schemes}
    for label, image in sizes:
        scores = block_scores(image)
        for scheme in schemes:
            bits = decode_bits(scores, len(scheme.bits))
            if bits is None:
                continue
            applicable[scheme.name] = True
            matched = int(np.sum(bits == np.asarray(scheme.bits, dtype=np.int8)))
            if matched > best.get(scheme.name, (-1, ""))[0]:
                best[scheme.name] = (matched, label)
    findings = []
    for scheme in schemes:
        n = len(scheme.bits)
        k = threshold(n, tries)
        if not applicable[scheme.name]:
            findings.append(
                WatermarkFinding(
                    scheme=scheme.name,
                    label=scheme.label,
                    detected=False,
                    confidence=0.0,
                    payload=None,
                    bits_matched=0,
                    bits_total=n,
                    threshold=k,
                    p_chance=1.0,
                    size_tried="original",
                    applicable=False,
                    note=(
                        "image too small to carry this payload"
                        if width * height <= MAX_ORIGINAL_PIXELS
                        else "large image with no generator-size aspect ratio: not decoded"
                    ),
                )
            )
            continue
        matched, label = best[scheme.name]
        p = min(1.0, binomial_tail(matched, n) * tries)
        detected = matched >= k
        findings.append(
            WatermarkFinding(
                scheme=scheme.name,
                label=scheme.label,
                detected=detected,
                confidence=round(1.0 - p, 6) if detected else 0.0,
                payload=scheme.payload if detected else None,
                bits_matched=matched,
                bits_total=n,
                threshold=k,
                p_chance=p,
                size_tried=label,
            )
        )
    return tuple(findings)
