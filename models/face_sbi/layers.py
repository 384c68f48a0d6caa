"""Experiment: does a probe on the CLIP encoder's intermediate layers find face swaps better?

    .venv-models/bin/python models/face_sbi/layers.py embed     # features of every layer, cached
    .venv-models/bin/python models/face_sbi/layers.py select    # probe per feature set, val AUC
    .venv-models/bin/python models/face_sbi/layers.py loto      # with other tools' swaps, per tool

Linear probes on the last layer of a frozen foundation model see what the image shows; the traces
of a paste (a seam, a change of noise or sharpness) live in the earlier layers (Koutlis and
Papadopoulos, ECCV 2024, "RINE", found the intermediate blocks of CLIP decisive for synthetic
images). The same faces, fakes and splits as ``train.py`` (same seeds) are run once through the
encoder with every block's residual stream exposed; for each block the class token and the
patch tokens' mean and spread are kept. ``select`` fits the probe of ``train.py`` on each
candidate feature set and ranks them by validation AUC (the same weighted validation set);
the test split is scored only for the set validation picks.

``loto`` asks a second question: would the test's swaps themselves help as training positives?
For each swapping tool, the probe is trained with the other tools' swap faces added (a fourth
kind of positive) and measured on that tool's faces against the test's real faces (leave one
tool out: the tool measured is never seen in training). This spends the only real swaps there
are, so it is an estimate of what more swap data would give, not a shipping recipe.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from detectors.clip_probe import global_view, to_input  # noqa: E402
from models.ai_clip.train import encoder_path  # noqa: E402
from models.face_sbi.sbi import generated_swap, jpeg, sample, self_blend  # noqa: E402
from models.face_sbi.train import half, load, screenshot  # noqa: E402

LAYERS = 12
CACHE = HERE / "out" / "layers.npz"


def layer_session() -> Any:
    """The encoder with each block's output (``N x 197 x 768``) as an extra graph output."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(encoder_path()))
    names = [f"/vision_model/encoder/layers.{i}/Add_1_output_0" for i in range(LAYERS - 1)]
    for name in names:
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def layer_features(session: Any, crops: list[np.ndarray]) -> np.ndarray:
    """``N x 12 x 3 x 768`` (float16): per block, class token, patch mean, patch spread."""
    name = session.get_inputs()[0].name
    out = []
    for i in range(0, len(crops), 16):
        views = np.stack([global_view(c) for c in crops[i : i + 16]])
        res = session.run(None, {name: to_input(views)})
        blocks = [*res[2:], res[1]]  # blocks 0-10, then block 11 (the model's own output)
        per = []
        for b in blocks:
            b = b.astype(np.float32)
            per.append(np.stack([b[:, 0], b[:, 1:].mean(axis=1), b[:, 1:].std(axis=1)], axis=1))
        out.append(np.stack(per, axis=1).astype(np.float16))
    return np.concatenate(out)


def embed() -> None:
    session = layer_session()
    faces = load(["crops.pkl", "crops_photos.pkl", "crops_photos_calib.pkl", "crops_ai.pkl"])
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in faces:
        kind = {"face_fake": "swap", "ai": "gen"}.get(f["label"], "real")
        groups[f"{f['split']}/{kind}" if kind != "swap" else "test/swap"].append(f)
    rng = random.Random(0)  # the same draws, in the same order, as train.py
    train_real = groups["train/real"]
    gen_train = groups["train/gen"]

    def swap(real: dict[str, Any], pool: list[dict[str, Any]]) -> np.ndarray:
        g = rng.choice(pool)
        return generated_swap(real["crop"], real["landmarks"], g["crop"], g["landmarks"], rng)

    sets: dict[str, list[np.ndarray]] = {}
    sets["x_real"] = [sample(f["crop"], f["landmarks"], False, rng, 224) for f in train_real]
    sets["x_sbi"] = [sample(f["crop"], f["landmarks"], True, rng, 224) for f in train_real]
    sets["x_gen"] = [sample(f["crop"], f["landmarks"], False, rng, 224) for f in gen_train]
    sets["x_swap"] = [
        sample(swap(f, gen_train), f["landmarks"], False, rng, 224) for f in train_real
    ]
    val_real = groups["val/real"]
    sets["xv_real"] = [f["crop"] for f in val_real]
    sets["xv_sbi"] = [self_blend(f["crop"], f["landmarks"], rng) for f in val_real]
    sets["xv_gen"] = [f["crop"] for f in groups["val/gen"]]
    sets["xv_swap"] = [swap(f, groups["val/gen"]) for f in val_real]
    sets["calib"] = [f["crop"] for f in groups["calib/real"]]
    real, fake = groups["test/real"], groups["test/swap"]
    for cond, fn in (("clean", None), ("jpeg75", 75), ("half", half), ("screenshot", screenshot)):
        for tag, fs in (("real", real), ("swap", fake)):
            if fn is None:
                crops = [f["crop"] for f in fs]
            elif fn == 75:
                crops = [jpeg(f["crop"], 75) for f in fs]
            else:
                crops = [fn(f["crop"]) for f in fs]  # type: ignore[operator]
            sets[f"test_{cond}_{tag}"] = crops
    arrays: dict[str, np.ndarray] = {}
    for key, crops in sets.items():
        arrays[key] = layer_features(session, crops)
        print(f"{key:22s} {len(crops):5d}", flush=True)
    arrays["test_real_family"] = np.array([f["family"] for f in real])
    arrays["test_swap_family"] = np.array([f["family"] for f in fake])
    np.savez(CACHE, **arrays)


def pick(a: np.ndarray, layers: list[int], parts: list[int]) -> np.ndarray:
    return a[:, layers][:, :, parts].reshape(len(a), -1).astype(np.float64)


def weighted(
    real: np.ndarray, positives: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and weights: the reals weigh as much as all positives, and each kind of
    positive the same (as train.py weighs them)."""
    x = np.concatenate([real, *positives])
    y = np.array([0] * len(real) + [1] * sum(len(p) for p in positives))
    w = np.concatenate(
        [np.full(len(real), 1.0 / len(real))]
        + [np.full(len(p), 1.0 / (len(positives) * max(1, len(p)))) for p in positives]
    )
    return x, y, w


def fit(real: np.ndarray, positives: list[np.ndarray], c: float) -> Callable[[Any], Any]:
    """The probe of train.py (standardised features, weighted logistic regression): a scorer."""
    from sklearn.linear_model import LogisticRegression

    x, y, w = weighted(real, positives)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    model = LogisticRegression(C=c, max_iter=3000)
    model.fit((x - mean) / scale, y, sample_weight=w * len(w))
    return lambda z: model.decision_function((z - mean) / scale)


def _record(updates: dict[str, Any]) -> None:
    """Keep ``updates`` in layers-experiment.json beside what the other step wrote."""
    path = HERE / "layers-experiment.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    record.update(updates)
    path.write_text(json.dumps(record, indent=1) + "\n")


def select() -> None:
    from sklearn.metrics import roc_auc_score

    d = dict(np.load(CACHE))
    candidates: dict[str, tuple[list[int], list[int]]] = {}
    for i in range(LAYERS):
        candidates[f"block{i}:cls+mean+std"] = ([i], [0, 1, 2])
    candidates["all:cls"] = (list(range(LAYERS)), [0])
    candidates["all:mean+std"] = (list(range(LAYERS)), [1, 2])
    candidates["all:cls+mean+std"] = (list(range(LAYERS)), [0, 1, 2])
    candidates["0-5:cls+mean+std"] = (list(range(6)), [0, 1, 2])
    candidates["3-8:cls+mean+std"] = (list(range(3, 9)), [0, 1, 2])
    candidates["even:cls+mean+std"] = (list(range(1, LAYERS, 2)), [0, 1, 2])
    train_keys = ("x_real", "x_sbi", "x_gen", "x_swap")
    val_keys = ("xv_real", "xv_sbi", "xv_gen", "xv_swap")
    results = []
    best: tuple[float, str, float] | None = None
    for name, (layers, parts) in candidates.items():
        real, *pos = (pick(d[k], layers, parts) for k in train_keys)
        val_real, *val_pos = (pick(d[k], layers, parts) for k in val_keys)
        xv, yv, wv = weighted(val_real, val_pos)
        for c in (0.00003, 0.0001, 0.0003, 0.001, 0.003):
            auc = float(roc_auc_score(yv, fit(real, pos, c)(xv), sample_weight=wv))
            results.append({"features": name, "C": c, "val_auc": round(auc, 4)})
            print(f"{name:22s} C={c:<7} val AUC {auc:.4f}", flush=True)
            if best is None or auc > best[0]:
                best = (auc, name, c)
    assert best is not None
    _, name, c = best
    layers, parts = candidates[name]
    real, *pos = (pick(d[k], layers, parts) for k in train_keys)
    score = fit(real, pos, c)
    test = {}
    for cond in ("clean", "jpeg75", "half", "screenshot"):
        sr = score(pick(d[f"test_{cond}_real"], layers, parts))
        sf = score(pick(d[f"test_{cond}_swap"], layers, parts))
        yy = np.array([0] * len(sr) + [1] * len(sf))
        test[cond] = round(float(roc_auc_score(yy, np.concatenate([sr, sf]))), 4)
    chosen = {"selection": results, "chosen": {"features": name, "C": c}, "test_auc": test}
    print(json.dumps(chosen["chosen"] | {"test_auc": test}, indent=1))
    _record(chosen)


def loto() -> None:
    from sklearn.metrics import roc_auc_score

    d = dict(np.load(CACHE))
    family = d["test_swap_family"]
    tools = sorted(set(family.tolist()))
    out: dict[str, Any] = {}
    for name, (layers, parts) in {
        "block11:cls+mean+std": ([11], [0, 1, 2]),
        "blocks8-9:cls+mean+std": ([8, 9], [0, 1, 2]),
        "all:mean+std": (list(range(LAYERS)), [1, 2]),
    }.items():
        real, *made = (pick(d[k], layers, parts) for k in ("x_real", "x_sbi", "x_gen", "x_swap"))
        test_real = pick(d["test_clean_real"], layers, parts)
        test_swap = pick(d["test_clean_swap"], layers, parts)
        for c in (0.0003, 0.003):
            for with_swaps in (False, True):
                aucs, counts = [], []
                for tool in tools:
                    others = [test_swap[family != tool]] if with_swaps else []
                    score = fit(real, [*made, *others], c)
                    zr, zt = score(test_real), score(test_swap[family == tool])
                    yy = np.r_[np.zeros(len(zr)), np.ones(len(zt))]
                    aucs.append(float(roc_auc_score(yy, np.r_[zr, zt])))
                    counts.append(len(zt))
                key = f"{name} C={c} {'with' if with_swaps else 'without'} other tools' swaps"
                out[key] = {
                    "auc_by_tool": dict(zip(tools, (round(a, 4) for a in aucs), strict=True)),
                    "auc_face_weighted": round(float(np.average(aucs, weights=counts)), 4),
                }
                print(f"{key:70s} {out[key]['auc_face_weighted']:.4f}", flush=True)
    _record({"leave_one_tool_out": out})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("embed", "select", "loto"))
    {"embed": embed, "select": select, "loto": loto}[parser.parse_args().step]()
