"""Train the face-manipulation detector on self-blended images (SBI) and export it to ONNX.

    .venv-models/bin/python models/face_sbi/train.py [--crops models/face_sbi/out/crops.pkl]

Only real faces are needed (Shiohara and Yamasaki, CVPR 2022): each training fake is a real face
blended into itself. The copy pasted in is changed the way a face swap's generated face differs
from the frame it is pasted into (colour and brightness shift, blur or sharpening, a lower
resolution, a shift of a few pixels and a slight rescale); the paste follows a mask grown from
the five MTCNN landmarks, deformed, feathered and partly transparent. So the model learns the
seam, not any one tool.

Splits follow the corpus manifest by source: ``train`` real faces fit the network; ``val``
real faces (with their own self-blends) choose the epoch and fit the calibration; ``calib``
real faces (sources used nowhere else) set the 1% false-positive threshold; ``test`` real faces
and every ``face_fake`` (real swaps and reenactments by other tools) are measured once.
Writes ``face_sbi.onnx``, ``evaluation.json`` and prints the card's values. CPU, 2 cores:
about 10-20 minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
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
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from detectors.face_blend import model_input  # noqa: E402
from models.common.stats import clopper_pearson, threshold_for_fpr  # noqa: E402

SIZE = 160
FAKE_METHODS = {
    "deepfacelab", "sadtalker", "faceswap-opencv", "megafs", "ghost", "roop", "e4s", "simswap",
    "blendface",
}  # fmt: skip


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def face_mask(shape: tuple[int, int], marks: np.ndarray, rng: random.Random) -> np.ndarray:
    """A soft inner-face mask grown from five landmarks (eyes, nose, mouth corners)."""
    h, w = shape
    le, re_, nose, lm, rm = marks
    eye_c, mouth_c = (le + re_) / 2, (lm + rm) / 2
    down = mouth_c - eye_c
    d = float(np.linalg.norm(down)) or 1.0
    down = down / d
    side = np.array([-down[1], down[0]])
    eye_dist = float(np.linalg.norm(re_ - le)) or d
    grow = rng.uniform(0.15, 0.55)
    pts = [
        le - side * eye_dist * grow - down * d * rng.uniform(0.3, 0.8),
        re_ + side * eye_dist * grow - down * d * rng.uniform(0.3, 0.8),
        le - side * eye_dist * grow * 1.2 + down * d * 0.5,
        re_ + side * eye_dist * grow * 1.2 + down * d * 0.5,
        lm - side * eye_dist * grow + down * d * rng.uniform(0.1, 0.5),
        rm + side * eye_dist * grow + down * d * rng.uniform(0.1, 0.5),
        mouth_c + down * d * rng.uniform(0.3, 0.9),
        nose,
    ]
    hull = cv2.convexHull(np.asarray(pts, np.float32).round().astype(np.int32))
    mask = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(mask, hull, 1.0)
    k = max(3, int(eye_dist * rng.uniform(0.05, 0.25)) | 1)
    kernel = np.ones((k, k), np.uint8)
    mask = cv2.erode(mask, kernel) if rng.random() < 0.5 else cv2.dilate(mask, kernel)
    sigma = eye_dist * rng.uniform(0.05, 0.35)
    mask = cv2.GaussianBlur(mask, (0, 0), max(sigma, 0.5))
    if rng.random() < 0.25:
        mask = mask * rng.uniform(0.5, 1.0)
    return mask[..., None]


def change_source(img: np.ndarray, rng: random.Random) -> np.ndarray:
    """What distinguishes a pasted generated face from its frame."""
    out = img.astype(np.float32)
    out = out * np.array([rng.uniform(0.9, 1.1) for _ in range(3)], np.float32)
    out = out + rng.uniform(-12, 12)
    out = (out - out.mean()) * rng.uniform(0.9, 1.1) + out.mean()
    out = np.clip(out, 0, 255).astype(np.uint8)
    r = rng.random()
    h, w = out.shape[:2]
    if r < 0.35:
        f = rng.uniform(0.35, 0.8)
        small = cv2.resize(
            out, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA
        )
        out = cv2.resize(
            small, (w, h), interpolation=rng.choice([cv2.INTER_LINEAR, cv2.INTER_CUBIC])
        )
    elif r < 0.55:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    elif r < 0.75:
        blur = cv2.GaussianBlur(out, (0, 0), 1.0)
        out = cv2.addWeighted(out, 1.5, blur, -0.5, 0)
    # A shift and slight rescale: the pasted face never lands exactly.
    s = rng.uniform(0.96, 1.04)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-2, 2), s)
    m[:, 2] += [rng.uniform(-0.025, 0.025) * w, rng.uniform(-0.025, 0.025) * h]
    return cv2.warpAffine(out, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def sample(crop: np.ndarray, marks: np.ndarray, fake: bool, rng: random.Random) -> np.ndarray:
    side = crop.shape[0]
    work = rng.randint(SIZE, max(SIZE, min(side, 384)))
    img = cv2.resize(
        crop, (work, work), interpolation=cv2.INTER_AREA if side > work else cv2.INTER_CUBIC
    )
    marks = marks * (work / side)
    if fake:
        mask = face_mask((work, work), marks, rng)
        img = (change_source(img, rng) * mask + img * (1 - mask)).round().astype(np.uint8)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    if rng.random() < 0.7:
        img = jpeg(np.ascontiguousarray(img), rng.randint(60, 98))
    return model_input(np.ascontiguousarray(img), SIZE)


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
        side = f["crop"].shape[0]
        mask = face_mask((side, side), f["landmarks"], rng)
        out.append(
            (change_source(f["crop"], rng) * mask + f["crop"] * (1 - mask)).round().astype(np.uint8)
        )
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

    out = HERE / "face_sbi.onnx"
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


def card(r: dict[str, Any], sha: str, n_train: int, n_sources: int) -> str:
    """The model card, from this run's numbers."""
    t, th = r["test"], r["threshold"]
    mtcnn = (HERE.parent / "faces_mtcnn" / "card.toml").read_text(encoding="utf-8")
    shas = {
        role: mtcnn.split(f"[files.{role}]")[1].split('sha256 = "')[1].split('"')[0]
        for role in ("pnet", "rnet", "onet")
    }
    lines = [
        'name = "face-sbi"',
        'version = "1.0.0"',
        'task = "face_manipulation"',
        'implementation = "face_blend"',
        'summary = "Per-face CNN trained on self-blended images (Shiohara and Yamasaki, CVPR '
        "2022): real faces blended into themselves, so it learned the seam a face swap leaves, not "
        'one tool. Faces from the MTCNN cascade. models/face_sbi/."',
        'licence = "Apache-2.0 (weights trained by Shingan from real faces; some training faces '
        "carry no licence or a non-commercial one: see [training]); MTCNN networks MIT "
        '(facenet-pytorch 2.6.0)"',
        'decision_threshold = "fpr_1"',
        "failure_modes = [",
        '  "methods that regenerate the whole frame (talking-head and reenactment models, '
        'whole-image diffusion edits) leave no paste seam and are often missed",',
        '  "faces under 48 px, in profile, occluded or blurred are not judged or judged poorly",',
        '  "heavy compression and downscaling erase the seam: see the jpeg75 and half rows",',
        '  "make-up, filters, beauty retouching and strong local edits can look like a seam",',
        f'  "trained on {n_train} real faces from {n_sources} sources: a lead for a person to '
        'follow, never proof",',
        "]",
        "",
        "[files.model]",
        'path = "face_sbi.onnx"',
        f'sha256 = "{sha}"',
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
        f"size = [{SIZE}, {SIZE}]",
        'layout = "NCHW"',
        'colour = "RGB"',
        "scale = 0.00392156862745098",
        "mean = [0.5, 0.5, 0.5]",
        "std = [0.5, 0.5, 0.5]",
        "",
        "[output]",
        'kind = "logit"',
        "",
        "[params]",
        "# The MTCNN settings equal faces_mtcnn's, so the cascade runs once per image.",
        "min_face = 20",
        "thresholds = [0.6, 0.7, 0.7]",
        "factor = 0.709",
        "max_side = 1920",
        "min_face_score = 48",
        "max_faces = 8",
        "",
        "[calibration]",
        'kind = "temperature"',
        f"temperature = {r['temperature']:.6f}",
        f"bias = {r['bias']:.6f}",
        "",
        "[[thresholds]]",
        'name = "fpr_1"',
        f"value = {th['value']:.6f}",
        "false_positive_rate = 0.01",
        f"recall = {t.get('recall_clean', 0.0)}",
        "",
        "[training]",
        f'data = "{n_train} real faces from {n_sources} sources in models/corpus/MANIFEST.tsv '
        "(face_real, and faces in real photographs); licences per file: MIT, Apache-2.0, GPL, "
        'S-Lab non-commercial, CC-BY-NC, DECA research-only, none"',
        'fakes = "self-blended images made on the fly: a changed copy of the face (colour, '
        "brightness, blur or sharpening, lower resolution, a small shift) pasted through a "
        'feathered mask grown from the 5 landmarks"',
        'split = "by source (models/corpus/splits.toml); val chooses the epoch and fits '
        'calibration; calib sets the threshold; test is measured once"',
        'command = ".venv-models/bin/python models/face_sbi/crops.py && '
        '.venv-models/bin/python models/face_sbi/train.py"',
        "",
        "[evaluation]",
        'note = "test split: real faces from sources never used in training, and face swaps and '
        f"reenactments by {len({k for k in t['per_source'] if k in FAKE_METHODS})} tools; "
        f"threshold from {th['calibration_faces']} calibration faces "
        f"({th['calibration_false_positives']} above it, 95% interval of the rate "
        f'{th["calibration_fpr_95ci"]})"',
        f"test_real_faces = {t['test_real_faces']}",
        f"test_fake_faces = {t['test_fake_faces']}",
    ]
    for c in ("clean", "jpeg75", "half"):
        if f"auc_{c}" in t:
            lines += [
                f"{c}_auc = {t[f'auc_{c}']}",
                f"{c}_recall_at_fpr_1 = {t[f'recall_{c}']}",
                f"{c}_fpr_at_fpr_1 = {t[f'fpr_{c}']}",
            ]
    lines.append('details = "evaluation.json beside this card (per source and method)"')
    return "\n".join(lines) + "\n"


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
