"""PDQ (Meta's perceptual hash) in NumPy, following the reference C++ step by step.

Algorithm and constants from facebook/ThreatExchange ``pdq/cpp`` (BSD licence, commit
baefb4ed67b6cdc1d4c82dbaef858d50866ac424): float luma, two passes of Jarosz box filters along
rows and columns, decimation to 64x64 at pixel centres, a gradient quality metric, a 16x16 DCT
and the median threshold (Torben's median: the 128th smallest of 256).

Why not the ``pdqhash`` binding: its C++ runs with Python's global interpreter lock held, about
365 ms for a 12-megapixel image, during which no other request of the service (a health check,
say) can run. Here the heavy work is NumPy operations over blocks of rows or columns, which
release the lock. The results agree with ``pdqhash`` bit for bit on the images of
``tests/test_pdq.py`` (414 images when measured, flat ones included: the DCT sums in the
reference's float32 order). Box sums are kept in float64 where the C++ keeps float running sums,
so a filtered value within rounding of a decision could in principle differ.
"""

from __future__ import annotations

import functools
import math

import numpy as np

MIN_HASHABLE_DIM = 5
_BLOCK = 512  # rows (or columns) filtered at once: bounds the float64 working memory


def window_size(old: int, new: int = 64) -> int:
    """``computeJaroszFilterWindowSize``: half the block a decimated pixel covers, rounded up."""
    return (old + 2 * new - 1) // (2 * new)


def _box_rows(data: np.ndarray, window: int, keep: np.ndarray | None = None) -> np.ndarray:
    """``box1DFloat`` along each row: the mean over ``[i + half - window, i + half - 1]``
    clipped to the row, with ``half = (window + 2) // 2``; only at the columns ``keep`` when
    given (the decimation reads 64 of them).

    Window sums are differences of a float64 running sum padded on both sides (zeros before,
    the total after), so every window, at the edges too, is two slices: no gathers.
    """
    n = data.shape[1]
    half = (window + 2) // 2
    idx = np.arange(n) if keep is None else keep
    count = (np.minimum(n, idx + half) - np.maximum(0, idx + half - window)).astype(np.float64)
    width = window + n + 1 + half  # [zeros * window][0, S1..Sn][Sn * half]
    out = np.empty((data.shape[0], idx.size), dtype=np.float32)
    for start in range(0, data.shape[0], _BLOCK):
        part = data[start : start + _BLOCK]
        sums = np.zeros((part.shape[0], width), dtype=np.float64)
        np.cumsum(part, axis=1, dtype=np.float64, out=sums[:, window + 1 : window + 1 + n])
        sums[:, window + 1 + n :] = sums[:, window + n : window + n + 1]
        if keep is None:
            diff = sums[:, window + half : window + half + n] - sums[:, half : half + n]
        else:
            diff = sums[:, window + half + keep] - sums[:, half + keep]
        out[start : start + _BLOCK] = diff / count
    return out


def _box_cols(data: np.ndarray, window: int, keep: np.ndarray | None = None) -> np.ndarray:
    """:func:`_box_rows` down each column (only at the rows ``keep`` when given). Blocks of
    columns are transposed first: a running sum along contiguous memory is twice as fast, and
    each value is the same sum in the same order."""
    rows = data.shape[0] if keep is None else keep.size
    out = np.empty((rows, data.shape[1]), dtype=np.float32)
    for start in range(0, data.shape[1], _BLOCK):
        part = np.ascontiguousarray(data[:, start : start + _BLOCK].T)
        out[:, start : start + _BLOCK] = _box_rows(part, window, keep).T
    return out


def luma(rgb: np.ndarray) -> np.ndarray:
    """Float luma as ``pdqhash`` computes it (double, then float)."""
    out = np.empty(rgb.shape[:2], dtype=np.float32)
    for start in range(0, rgb.shape[0], _BLOCK):
        part = rgb[start : start + _BLOCK]
        out[start : start + _BLOCK] = (
            part[:, :, 0] * 0.299 + part[:, :, 1] * 0.587 + part[:, :, 2] * 0.114
        )
    return out


def downsample(lum: np.ndarray) -> np.ndarray:
    """Blur (two Jarosz passes) and decimate a float luma image to 64x64."""
    rows, cols = lum.shape
    if (rows, cols) == (64, 64):
        return lum.astype(np.float32)
    along_rows, along_cols = window_size(cols), window_size(rows)
    ri = ((np.arange(64) + 0.5) * rows / 64).astype(int)
    ci = ((np.arange(64) + 0.5) * cols / 64).astype(int)
    buf = _box_rows(lum, along_rows)
    buf = _box_cols(buf, along_cols)
    # The second pass is needed only where the decimation reads: 64 columns, then 64 rows
    # (each value is computed exactly as over the whole image).
    buf = _box_rows(buf, along_rows, keep=ci)
    small: np.ndarray = _box_cols(buf, along_cols, keep=ri)
    return small


def quality(small: np.ndarray) -> int:
    """``pdqImageDomainQualityMetric`` on the 64x64 downsample."""
    hundred, full = np.float32(100), np.float32(255)
    dv = np.trunc((small[:-1, :] - small[1:, :]) * hundred / full)
    dh = np.trunc((small[:, :-1] - small[:, 1:]) * hundred / full)
    total = int(np.abs(dv).sum() + np.abs(dh).sum())
    return min(100, total // 90)


@functools.cache
def _dct() -> np.ndarray:
    scale = np.float64(np.float32(math.sqrt(2.0 / 64)))
    i = np.arange(1, 17)[:, None]
    j = np.arange(64)[None, :]
    matrix: np.ndarray = (scale * np.cos((math.pi / 2.0 / 64) * i * (2 * j + 1))).astype(np.float32)
    return matrix


def dct16(small: np.ndarray) -> np.ndarray:
    """``dct64To16``: D A D^T in float32, each sum accumulated in the reference's order, so
    that near-ties with the median (flat images) fall the same way."""
    d = _dct()
    a = small.astype(np.float32)
    t = np.zeros((16, 64), dtype=np.float32)
    for k in range(64):  # T = D A
        t += d[:, k : k + 1] * a[k : k + 1, :]
    b = np.zeros((16, 16), dtype=np.float32)
    for k in range(64):  # B = T D^T
        b += t[:, k : k + 1] * d[:, k][None, :]
    return b


def hash256(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """(256 bits, quality) of an ``HxWx3`` uint8 RGB image; bit order as ``pdqhash``."""
    rows, cols = rgb.shape[:2]
    if rows < MIN_HASHABLE_DIM or cols < MIN_HASHABLE_DIM:
        return np.zeros(256, dtype=np.uint8), 0
    small = downsample(luma(rgb))
    coeffs = dct16(small)
    median = np.sort(coeffs, axis=None)[127]
    bits = (coeffs > median).astype(np.uint8).reshape(256)
    # pdqhash lists bit k of the hash (row-major i * 16 + j) last-first
    return bits[::-1].copy(), quality(small)
