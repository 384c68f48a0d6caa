"""Small statistics shared by the training scripts (no torch, no sklearn)."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import beta


def clopper_pearson(k: int, n: int, level: float = 0.95) -> list[float]:
    """Exact binomial confidence interval for ``k`` events in ``n`` trials."""
    if n == 0:
        return [0.0, 1.0]
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return [round(lo, 4), round(hi, 4)]


def threshold_for_fpr(real_scores: np.ndarray, fpr: float, decimals: int = 6) -> float:
    """The lowest threshold, written with ``decimals`` decimals (as a card stores it), at which
    at most ``fpr`` of ``real_scores`` are at or above it.

    Ties and rounding go towards fewer false positives: the threshold is rounded up from just
    above the highest score that must stay below it."""
    s = np.sort(np.asarray(real_scores, dtype=np.float64))[::-1]
    allowed = int(np.floor(fpr * len(s)))
    if allowed >= len(s):
        return float(s[-1])
    scale = 10**decimals
    t = (math.floor(s[allowed] * scale) + 1) / scale
    while t <= s[allowed]:  # float rounding: stay strictly above
        t = (round(t * scale) + 1) / scale
    return min(1.0, t)
