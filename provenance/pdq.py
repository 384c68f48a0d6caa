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
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

MIN_HASHABLE_DIM = 5
_BLOCK = 256  # columns filtered at once: bounds the float64 working memory
_STRIP = 64  # rows of luma made and filtered at a time


def window_size(old: int, new: int = 64) -> int:
    """``computeJaroszFilterWindowSize``: half the block a decimated pixel covers, rounded up."""
    return (old + 2 * new - 1) // (2 * new)


def _box_sums(data: np.ndarray, window: int, axis: int) -> np.ndarray:
    """``box1DFloat``'s window sums along ``axis`` (window ``[i + half - window, i + half - 1]``
    as in :func:`_windows`, zeros outside the array) in float64, by OpenCV's box filter."""
    import cv2

    half = (window + 2) // 2
    anchor = window - half  # the kernel's anchor sits this many places from its start
    kernel, point = ((window, 1), (anchor, 0)) if axis == 1 else ((1, window), (0, anchor))
    sums: np.ndarray = cv2.boxFilter(
        data, cv2.CV_64F, kernel, anchor=point, normalize=False, borderType=cv2.BORDER_CONSTANT
    )
    return sums


def _windows(n: int, window: int, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and past-last index of ``box1DFloat``'s window at each position of ``at``:
    ``[i + half - window, i + half - 1]`` clipped to ``[0, n)``, ``half = (window + 2) // 2``."""
    half = (window + 2) // 2
    return np.maximum(0, at + half - window), np.minimum(n, at + half)


def _covered(n: int, window: int, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The windows at ``at`` (as :func:`_windows`) and every index one of them covers, sorted."""
    lo, hi = _windows(n, window, at)
    return lo, hi, np.unique(np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)]))


def _means(data: np.ndarray, lo: np.ndarray, hi: np.ndarray, axis: int) -> np.ndarray:
    """The mean of each window ``[lo[j], hi[j])`` along ``axis``: summed in float64 (exact, see
    the module's docstring) and divided by its length, stored as float32."""
    shape = (data.shape[0], lo.size) if axis == 1 else (lo.size, data.shape[1])
    out = np.empty(shape, dtype=np.float32)
    if lo[0] == 0 and hi[-1] == data.shape[axis] and np.array_equal(hi[:-1], lo[1:]):
        # The windows tile the axis (the usual case): one reduction sums them all.
        count = (hi - lo).astype(np.float64)
        sums = np.add.reduceat(data, lo, axis=axis, dtype=np.float64)
        np.divide(sums, count if axis == 1 else count[:, None], out=out, casting="same_kind")
        return out
    for j, (a, b) in enumerate(zip(lo, hi, strict=True)):
        if axis == 1:
            out[:, j] = data[:, a:b].sum(axis=1, dtype=np.float64) / (b - a)
        else:
            out[j] = data[a:b].sum(axis=0, dtype=np.float64) / (b - a)
    return out


_LUMA_WEIGHTS = np.array([[299, 587, 114]], dtype=np.float32)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Float luma as ``pdqhash`` computes it: ``0.299 R + 0.587 G + 0.114 B`` in double, then
    rounded to float.

    Computed as ``(299 R + 587 G + 114 B) / 1000`` in float32: the weighted sum is an integer
    below 2**24, exact in float32 whatever the order, and one correctly rounded division gives
    the float nearest the exact value, which the double expression also rounds to (equal for
    all 2**24 colours; ``tests/test_pdq.py``). Half the memory traffic of float64.
    """
    import cv2

    weighted = cv2.transform(np.asarray(rgb, dtype=np.float32), _LUMA_WEIGHTS)
    out: np.ndarray = np.divide(weighted, np.float32(1000), out=weighted)
    return out.reshape(rgb.shape[:2])


_helper: ThreadPoolExecutor | None = None
_helper_lock = threading.Lock()
_use_helper = True


def use_helper_thread(enabled: bool) -> None:
    """Whether a hash may take a second core (:func:`_in_halves`). A process that is given one
    core (a batch worker among several) turns it off: there it would only add hand-overs."""
    global _use_helper
    _use_helper = enabled


def _in_halves(work: Callable[[int, int], None], n: int) -> None:
    """``work(0, n)`` as two halves: the second on a helper thread if it is free, while this
    thread does the first (NumPy and OpenCV release the interpreter lock); if the helper is
    still busy with another image when the first half is done, this thread does the second
    too. A lone analysis so uses both cores for its hash; busy ones lose nothing."""
    global _helper
    if n < 2 or not _use_helper:
        work(0, n)
        return
    with _helper_lock:
        if _helper is None:
            _helper = ThreadPoolExecutor(1, thread_name_prefix="shingan-pdq")
        helper = _helper
    half = n // 2
    later = helper.submit(work, half, n)
    work(0, half)
    if later.cancel():
        work(half, n)
    else:
        later.result()


def _row_filter(rgb: np.ndarray, window: int, keep: np.ndarray) -> np.ndarray:
    """The first row filter of the luma at the columns ``keep``, made :data:`_STRIP` rows at a
    time so that no full-size float image is written."""
    lo, hi = _windows(rgb.shape[1], window, keep)
    count = (hi - lo).astype(np.float64)
    out = np.empty((rgb.shape[0], keep.size), dtype=np.float32)

    def strips(first: int, last: int) -> None:
        for start in range(first * _STRIP, min(rgb.shape[0], last * _STRIP), _STRIP):
            part = luma(rgb[start : start + _STRIP])
            rows = out[start : start + part.shape[0]]
            sums = _box_sums(part, window, axis=1)[:, keep]
            np.divide(sums, count, out=rows, casting="same_kind")

    _in_halves(strips, -(-rgb.shape[0] // _STRIP))
    return out


def _column_filter(data: np.ndarray, window: int, keep: np.ndarray) -> np.ndarray:
    """The column filter of ``data`` at the rows ``keep``, :data:`_BLOCK` columns at a time."""
    lo, hi = _windows(data.shape[0], window, keep)
    count = (hi - lo).astype(np.float64)[:, None]
    out = np.empty((keep.size, data.shape[1]), dtype=np.float32)

    def blocks(first: int, last: int) -> None:
        for start in range(first * _BLOCK, min(data.shape[1], last * _BLOCK), _BLOCK):
            part = np.s_[:, start : start + _BLOCK]
            sums = _box_sums(data[part], window, axis=0)[keep]
            np.divide(sums, count, out=out[part], casting="same_kind")

    _in_halves(blocks, -(-data.shape[1] // _BLOCK))
    return out


def _decimate(rgb: np.ndarray) -> np.ndarray:
    """The 64x64 decimation of the two filter passes over the luma of ``rgb``.

    Only what the decimation reads is computed: the first pass's row filter at the columns the
    second row filter's windows cover (about half), its column filter at the rows the second
    column filter's windows cover (about half), then the second pass at the 64 sampled columns
    and rows. Every value computed equals the one the whole-image passes would give (exact
    window sums, one rounding each).
    """
    rows, cols = rgb.shape[:2]
    along_rows, along_cols = window_size(cols), window_size(rows)
    ri = ((np.arange(64) + 0.5) * rows / 64).astype(int)
    ci = ((np.arange(64) + 0.5) * cols / 64).astype(int)
    col_lo, col_hi, cols_needed = _covered(cols, along_rows, ci)
    row_lo, row_hi, rows_needed = _covered(rows, along_cols, ri)
    buf = _row_filter(rgb, along_rows, cols_needed)
    buf = _column_filter(buf, along_cols, rows_needed)
    # The second pass's windows as positions among the needed columns and rows: each window
    # is a run of consecutive indices, all of them needed.
    first = np.searchsorted(cols_needed, col_lo)
    buf = _means(buf, first, first + (col_hi - col_lo), axis=1)
    first = np.searchsorted(rows_needed, row_lo)
    return _means(buf, first, first + (row_hi - row_lo), axis=0)


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
    small = luma(rgb) if (rows, cols) == (64, 64) else _decimate(rgb)
    coeffs = dct16(small)
    median = np.sort(coeffs, axis=None)[127]
    bits = (coeffs > median).astype(np.uint8).reshape(256)
    # pdqhash lists bit k of the hash (row-major i * 16 + j) last-first
    return bits[::-1].copy(), quality(small)
