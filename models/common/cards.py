"""What the training scripts' model cards share: file digests, the stated false-positive rate,
the threshold block and the per-condition evaluation lines."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stated_fpr(test: dict[str, Any], target: float = 0.01) -> float:
    """The false-positive rate a card states: the target, or the test's if that was higher."""
    return round(max(target, float(test["fpr_clean"])), 4)


def stated_name(test: dict[str, Any]) -> str:
    return "fpr_1" if stated_fpr(test) <= 0.01 else "calib_fpr_1"


def threshold_lines(value: float, test: dict[str, Any]) -> list[str]:
    """The card's ``[[thresholds]]`` block for a threshold chosen at 1% on calibration data."""
    return [
        "# The threshold was chosen on the calibration split for at most 1% false positives;",
        "# false_positive_rate records 1%, or the held-out test's rate when that is higher",
        "# (then rule 7 shows the score as a lead and never lets it decide).",
        "[[thresholds]]",
        f'name = "{stated_name(test)}"',
        f"value = {value:.6f}",
        f"false_positive_rate = {stated_fpr(test)}",
        f"recall = {test['recall_clean']}",
    ]


def evaluation_lines(test: dict[str, Any], conditions: tuple[str, ...]) -> list[str]:
    """AUC, recall and false-positive rate at the threshold, per test copy that was measured."""
    lines = []
    for c in conditions:
        if f"auc_{c}" in test:
            lines += [
                f"{c}_auc = {test[f'auc_{c}']}",
                f"{c}_recall_at_fpr_1 = {test[f'recall_{c}']}",
                f"{c}_fpr_at_fpr_1 = {test[f'fpr_{c}']}",
            ]
    return lines
