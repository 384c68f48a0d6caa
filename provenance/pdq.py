"""PDQ (Meta's perceptual hash) in NumPy, following the reference C++ step by step.

Algorithm and constants from facebook/ThreatExchange ``pdq/cpp`` (BSD licence, commit
baefb4ed67b6cdc1d4c82dbaef858d50866ac424): float luma, two passes of Jarosz box filters along
rows and columns, decimation to 64x64 at pixel centres, a gradient quality metric, a 16x16 DCT
and the median threshold (Torben's median: the 128th smallest of 256).

Why not the ``pdqhash`` binding: its C++ runs with Python's global interpreter lock held, about
365 ms for a 12-megapixel image, during which no other request of the service (a health check,
say) can run. Here the heavy work is OpenCV box filters and NumPy operations over blocks of
rows or columns, which release the lock. The results agree with ``pdqhash`` bit for bit on the
images of ``tests/test_pdq.py`` (414 images when measured, flat ones included: the DCT sums in
the reference's float32 order).

Box sums are taken in float64 where the C++ keeps float running sums. A window's sum of float32
values of this range is exact in float64 whatever the order of the additions, so OpenCV's
sliding sums, NumPy's running sums and direct sums all give the same value; only the division
by the window's count rounds, once, as in the reference. A filtered value within float32
rounding of a decision could still in principle differ from the C++.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

MIN_HASHABLE_DIM = 5
_BLOCK = 512  # rows (or columns) filtered at once: bounds the float64 working memory
_LUMA_ROWS = 32
_STRIP = 64  # rows of luma made and filtered at a time (hash256)


def window_size(old: int, new: int = 64) -> int:
    """``computeJaroszFilterWindowSize``: half the block a decimated pixel covers, rounded up."""
    return (old + 2 * new - 1) // (2 * new)


def _box(data: np.ndarray, window: int, axis: int, keep: np.ndarray | None = None) -> np.ndarray:
    """``box1DFloat`` along ``axis`` over the whole array (window as in :func:`_windows`), with
    OpenCV's box filter: float64 sums of the window (zeros outside the array), divided by the
    number of pixels inside it. Strips of :data:`_BLOCK` rows or columns bound the memory.
    ``keep`` (rows only): return just those columns."""
    import cv2

    n = data.shape[axis]
    half = (window + 2) // 2
    idx = np.arange(n)
    count = (np.minimum(n, idx + half) - np.maximum(0, idx + half - window)).astype(np.float64)
    # The window of output i is [i + half - window, i + half - 1]: the kernel's anchor sits
    # window - half places from its start.
    anchor = window - half
    kernel, point = ((window, 1), (anchor, 0)) if axis == 1 else ((1, window), (0, anchor))
    counts = count[None, :] if axis == 1 else count[:, None]
    if keep is not None:
        counts = counts[:, keep]
    out = np.empty(data.shape if keep is None else (data.shape[0], keep.size), dtype=np.float32)
    for start in range(0, data.shape[1 - axis], _BLOCK):
        strip = np.s_[start : start + _BLOCK] if axis == 1 else np.s_[:, start : start + _BLOCK]
        sums: np.ndarray = np.asarray(
            cv2.boxFilter(
                data[strip],
                cv2.CV_64F,
                kernel,
                anchor=point,
                normalize=False,
                borderType=cv2.BORDER_CONSTANT,
            ),
            dtype=np.float64,
        )
        if keep is not None:
            sums = sums[:, keep]
        sums /= counts
        out[strip] = sums
    return out


def _windows(n: int, window: int, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and past-last index of ``box1DFloat``'s window at each position of ``at``:
    ``[i + half - window, i + half - 1]`` clipped to ``[0, n)``, ``half = (window + 2) // 2``."""
    half = (window + 2) // 2
    return np.maximum(0, at + half - window), np.minimum(n, at + half)


def _means(data: np.ndarray, lo: np.ndarray, hi: np.ndarray, axis: int) -> np.ndarray:
    """The mean of each window ``[lo[j], hi[j])`` along ``axis``: summed in float64 (exact, see
    the module's docstring) and divided by its length, stored as float32."""
    shape = (data.shape[0], lo.size) if axis == 1 else (lo.size, data.shape[1])
    out = np.empty(shape, dtype=np.float32)
    for j, (a, b) in enumerate(zip(lo, hi, strict=True)):
        if axis == 1:
            out[:, j] = data[:, a:b].sum(axis=1, dtype=np.float64) / (b - a)
        else:
            out[j] = data[a:b].sum(axis=0, dtype=np.float64) / (b - a)
    return out


def luma(rgb: np.ndarray) -> np.ndarray:
    """Float luma as ``pdqhash`` computes it (double, then float).

    In strips of :data:`_LUMA_ROWS` rows through two reused float64 buffers: strips that stay in
    the processor's cache made this a third faster than whole-image temporaries.
    """
    rows, cols = rgb.shape[:2]
    out = np.empty((rows, cols), dtype=np.float32)
    acc = np.empty((_LUMA_ROWS, cols), dtype=np.float64)
    term = np.empty_like(acc)
    for start in range(0, rows, _LUMA_ROWS):
        part = rgb[start : start + _LUMA_ROWS]
        n = part.shape[0]
        a, t = acc[:n], term[:n]
        np.multiply(part[:, :, 0], 0.299, out=a)
        np.multiply(part[:, :, 1], 0.587, out=t)
        a += t
        np.multiply(part[:, :, 2], 0.114, out=t)
        a += t
        out[start : start + n] = a
    return out


def _luma_row_filter(rgb: np.ndarray, window: int, keep: np.ndarray) -> np.ndarray:
    """The luma's first row filter at the columns ``keep``, made strip by strip so that no
    full-size float image is written (the same values as :func:`luma`, then :func:`_box`)."""
    out = np.empty((rgb.shape[0], keep.size), dtype=np.float32)
    for start in range(0, rgb.shape[0], _STRIP):
        part = luma(rgb[start : start + _STRIP])
        out[start : start + part.shape[0]] = _box(part, window, axis=1, keep=keep)
    return out


def _decimate(
    shape: tuple[int, ...], first_pass: Callable[[int, np.ndarray], np.ndarray]
) -> np.ndarray:
    """The 64x64 decimation of an image of ``shape`` whose first row filter (window, columns to
    keep) ``first_pass`` computes.

    Only what the decimation reads is computed: the first pass's row filter at the columns the
    second row filter's windows cover (about half), its column filter there, the second pass
    at the 64 sampled columns, then rows. Every value computed equals the one the whole-image
    passes would give (exact window sums).
    """
    rows, cols = shape[:2]
    along_rows, along_cols = window_size(cols), window_size(rows)
    ri = ((np.arange(64) + 0.5) * rows / 64).astype(int)
    ci = ((np.arange(64) + 0.5) * cols / 64).astype(int)
    lo, hi = _windows(cols, along_rows, ci)
    needed = np.unique(np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)]))
    buf = _box(first_pass(along_rows, needed), along_cols, axis=0)
    # The second row filter's windows, as positions among the needed columns: each window is
    # a run of consecutive columns, all of them needed.
    first = np.searchsorted(needed, lo)
    buf = _means(buf, first, first + (hi - lo), axis=1)
    return _means(buf, *_windows(rows, along_cols, ri), axis=0)


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
    if (rows, cols) == (64, 64):
        small = luma(rgb)
    else:
        small = _decimate(rgb.shape, lambda window, keep: _luma_row_filter(rgb, window, keep))
    coeffs = dct16(small)
    median = np.sort(coeffs, axis=None)[127]
    bits = (coeffs > median).astype(np.uint8).reshape(256)
    # pdqhash lists bit k of the hash (row-major i * 16 + j) last-first
    return bits[::-1].copy(), quality(small)
