"""A candidate tried and NOT shipped: a small CNN trained from scratch on self-blended images.

    .venv-models/bin/python models/face_sbi/cnn_experiment.py [--epochs 20]

Measured on 2026-12-03 (411 training faces from 16 sources, batches of 32, 1,024 samples an
epoch, about 52 s an epoch on 2 cores): the validation AUC between real faces and their
self-blends stayed at 0.49-0.50 and the training loss at 0.70-0.71 for seven epochs; it had
learned nothing when it was stopped. SBI's published results start from an ImageNet-trained
EfficientNet; from scratch, on a few hundred faces, the seam is not learned in reach of these
CPUs. The shipped detector is the CLIP probe of ``train.py``. Kept as the record of what was
tried; it writes only under ``out/``."""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from models.common.stats import clopper_pearson, threshold_for_fpr  # noqa: E402
from models.face_sbi.sbi import SIZE, jpeg, model_input, sample, self_blend  # noqa: E402

FAKE_METHODS = {
    "deepfacelab", "sadtalker", "faceswap-opencv", "megafs", "ghost", "roop", "e4s", "simswap",
    "blendface",
}  # fmt: skip


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(batch).float().permute(0, 3, 1, 2) / 255.0
    return (x - 0.5) / 0.5


class FaceNet(nn.Module):
    """A small CNN. The first layer keeps full resolution, where the seam is; the head pools
    both the mean and the maximum of the last features (a seam is local)."""

    def __init__(self) -> None:
        super().__init__()
        chans = [3, 16, 32, 64, 128, 192]
        layers: list[nn.Module] = []
        for i in range(len(chans) - 1):
            layers += [
                nn.Conv2d(chans[i], chans[i + 1], 3, stride=1 if i == 0 else 2, padding=1),
                nn.BatchNorm2d(chans[i + 1]),
                nn.ReLU(inplace=True),
            ]
            if i >= 2:
                layers += [
                    nn.Conv2d(chans[i + 1], chans[i + 1], 3, padding=1),
                    nn.BatchNorm2d(chans[i + 1]),
                    nn.ReLU(inplace=True),
                ]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1] * 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return self.head(torch.cat([f.amax(dim=(2, 3)), f.mean(dim=(2, 3))], dim=1)).squeeze(1)


def logits(net: nn.Module, crops: list[np.ndarray]) -> np.ndarray:
    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(crops), 64):
            batch = np.stack([model_input(c, SIZE) for c in crops[i : i + 64]])
            out.append(net(to_tensor(batch)).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def pseudo(faces: list[dict[str, Any]], seed: int) -> list[np.ndarray]:
    """Deterministic self-blends of the given faces (for validation)."""
    rng = random.Random(seed)
    out = []
    for f in faces:
        out.append(self_blend(f["crop"], f["landmarks"], rng))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--crops",
        type=Path,
        nargs="+",
        default=[HERE / "out" / "crops.pkl", HERE / "out" / "crops_photos.pkl"],
        help="crops.py outputs; faces in real photographs count as real faces of their source",
    )
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--per-epoch", type=int, default=1200)
    parser.add_argument("--fpr", type=float, default=0.01)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    rng = random.Random(0)
    faces = [
        f
        for path in args.crops
        if path.exists()
        for f in pickle.loads(path.read_bytes())  # noqa: S301 - crops.py output, ours
    ]
    for f in faces:
        if f["label"] == "real":
            f["label"] = "face_real"
    by: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for f in faces:
        by[(f["split"], "fake" if f["label"] == "face_fake" else "real")].append(f)
    train = by[("train", "real")]
    val_real = by[("val", "real")]
    # Every source weighs the same in training.
    fam_count: dict[str, int] = defaultdict(int)
    for f in train:
        fam_count[f["family"]] += 1
    w = np.array([1.0 / fam_count[f["family"]] for f in train])
    w = w / w.sum()
    print(f"train {len(train)} real faces from {len(fam_count)} sources; val {len(val_real)}")

    val_crops = [f["crop"] for f in val_real]
    val_fakes = pseudo(val_real, 1)
    net = FaceNet()
    print(f"{sum(p.numel() for p in net.parameters())} parameters")
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    loss_fn = nn.BCEWithLogitsLoss()
    best: tuple[float, dict[str, Any]] | None = None
    history = []
    nprng = np.random.default_rng(0)
    for epoch in range(args.epochs):
        net.train()
        started = time.monotonic()
        idx = nprng.choice(len(train), size=args.per_epoch, p=w)
        total = 0.0
        for b in range(0, len(idx), 32):
            chunk = idx[b : b + 32]
            xs, ys = [], []
            for i in chunk:
                fake = rng.random() < 0.5
                xs.append(sample(train[i]["crop"], train[i]["landmarks"], fake, rng))
                ys.append(float(fake))
            opt.zero_grad()
            loss = loss_fn(net(to_tensor(np.stack(xs))), torch.tensor(ys))
            loss.backward()
            opt.step()
            total += float(loss) * len(chunk)
        sched.step()
        zr, zf = logits(net, val_crops), logits(net, val_fakes)
        auc = float(roc_auc_score([0] * len(zr) + [1] * len(zf), np.concatenate([zr, zf])))
        history.append(
            {"epoch": epoch, "loss": round(total / len(idx), 4), "val_sbi_auc": round(auc, 4)}
        )
        print(
            f"epoch {epoch} loss {total / len(idx):.4f} val SBI AUC {auc:.4f} ({time.monotonic() - started:.0f} s)",
            flush=True,
        )
        if best is None or auc >= best[0]:
            best = (auc, {k: v.clone() for k, v in net.state_dict().items()})
    assert best is not None
    net.load_state_dict(best[1])

    # Calibration on validation (real faces and their self-blends), threshold on calib reals.
    zr, zf = logits(net, val_crops), logits(net, val_fakes)
    cal = LogisticRegression(C=1e6).fit(
        np.concatenate([zr, zf])[:, None], [0] * len(zr) + [1] * len(zf)
    )
    temperature, bias = 1.0 / float(cal.coef_[0, 0]), float(cal.intercept_[0])

    def score(z: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(z / temperature + bias)))

    calib = by[("calib", "real")]
    s_cal = score(logits(net, [f["crop"] for f in calib]))
    threshold = threshold_for_fpr(s_cal, args.fpr)
    fp = int((s_cal >= threshold).sum())
    test_real = by[("test", "real")]
    test_fake = [f for f in faces if f["label"] == "face_fake"]
    results: dict[str, Any] = {"history": history, "temperature": temperature, "bias": bias}
    results["threshold"] = {
        "value": threshold,
        "calibration_faces": len(calib),
        "calibration_sources": sorted({f["family"] for f in calib}),
        "calibration_false_positives": fp,
        "calibration_fpr_95ci": clopper_pearson(fp, len(calib)),
    }
    results["test"] = evaluate(net, score, test_real, test_fake, threshold)
    print(json.dumps(results["threshold"], indent=1))
    print(json.dumps({k: v for k, v in results["test"].items() if k != "per_source"}, indent=1))

    out = HERE / "out" / "face_sbi_cnn.onnx"
    net.eval()
    torch.onnx.export(
        net,
        (torch.zeros(1, 3, SIZE, SIZE),),
        str(out),
        input_names=["image"],
        output_names=["logit"],
        dynamic_axes={"image": {0: "batch"}, "logit": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    results["onnx_sha256"] = sha
    (HERE / "evaluation.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(
        f"card: temperature={temperature:.6f} bias={bias:.6f} threshold={threshold:.6f} sha256={sha}"
    )


def evaluate(
    net: nn.Module,
    score: Any,
    real: list[dict[str, Any]],
    fake: list[dict[str, Any]],
    threshold: float,
) -> dict[str, Any]:
    out: dict[str, Any] = {"test_real_faces": len(real), "test_fake_faces": len(fake)}
    per: dict[str, Any] = {}
    variants = {
        "clean": lambda c: c,
        "jpeg75": lambda c: jpeg(c, 75),
        "half": lambda c: cv2.resize(
            c, (max(8, c.shape[1] // 2), max(8, c.shape[0] // 2)), interpolation=cv2.INTER_AREA
        ),
    }
    for name, fn in variants.items():
        sr = score(logits(net, [fn(f["crop"]) for f in real]))
        sf = score(logits(net, [fn(f["crop"]) for f in fake]))
        if len(sr) and len(sf):
            out[f"auc_{name}"] = round(
                float(roc_auc_score([0] * len(sr) + [1] * len(sf), np.concatenate([sr, sf]))), 4
            )
        fp = int((sr >= threshold).sum())
        out[f"fpr_{name}"] = round(fp / max(1, len(sr)), 4)
        out[f"fpr_{name}_95ci"] = clopper_pearson(fp, len(sr))
        out[f"recall_{name}"] = round(float((sf >= threshold).mean()) if len(sf) else 0.0, 4)
        for group, faces_, s in (("real", real, sr), ("fake", fake, sf)):
            for fam in sorted({f["family"] for f in faces_}):
                m = np.array([f["family"] == fam for f in faces_])
                key = "false_positive_rate" if group == "real" else "recall"
                per.setdefault(fam, {"n": int(m.sum())})[f"{key}_{name}"] = round(
                    float((s[m] >= threshold).mean()), 4
                )
    out["per_source"] = per
    return out


if __name__ == "__main__":
    main()
