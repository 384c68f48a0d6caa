"""Find the faces in the corpus's face images (the service's own MTCNN) and keep their crops.

    .venv-models/bin/python models/face_sbi/crops.py --corpus models/corpus/data \
        --out models/face_sbi/out/crops.pkl

Each face of at least ``--min-face`` px with detector confidence >= 0.95 becomes one crop: the
square of 1.4x the face box around its centre (``detectors/face_blend.py``'s ``face_square``,
the same the service cuts), at native resolution (at most 512 px a side), with its five
landmarks in crop coordinates. Videos (face_fake clips) give up to 8 frames, one a second.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps
from pillow_heif import register_heif_opener

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from detectors.face_blend import cut_face  # noqa: E402
from detectors.faces import Mtcnn  # noqa: E402
from detectors.registry import Registry  # noqa: E402
from models.corpus.build import read_index  # noqa: E402

VIDEO = {".mp4", ".mov", ".webm", ".mkv", ".avi"}
register_heif_opener()


def frames(path: Path) -> list[np.ndarray]:
    if path.suffix.lower() in VIDEO:
        cap = cv2.VideoCapture(str(path))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        out, i = [], 0
        while len(out) < 8:
            ok, frame = cap.read()
            if not ok:
                break
            if i % max(1, round(fps)) == 0:
                out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            i += 1
        return out
    image = Image.open(path)
    image.seek(0)
    return [np.asarray(ImageOps.exif_transpose(image).convert("RGB"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "models/corpus/data")
    parser.add_argument("--out", type=Path, default=ROOT / "models/face_sbi/out/crops.pkl")
    parser.add_argument("--labels", default="face_real,face_fake,real,ai")
    parser.add_argument("--splits", default="train,val,calib,test")
    parser.add_argument("--min-face", type=int, default=40)
    args = parser.parse_args()
    mtcnn = Registry().create("faces-mtcnn")
    assert isinstance(mtcnn, Mtcnn)
    items = read_index(args.corpus)
    wanted = set(args.labels.split(","))
    splits = set(args.splits.split(","))
    crops: list[dict[str, Any]] = []
    chosen = (i for i in items if i["label"] in wanted and i["split"] in splits)
    for n, item in enumerate(chosen):
        path = args.corpus / item["file"]
        try:
            images = frames(path)
        except Exception as exc:
            print(f"skip {item['file']}: {exc}", file=sys.stderr)
            continue
        for k, rgb in enumerate(images):
            for face in mtcnn.detect(rgb):
                if face.size < args.min_face or face.score < 0.95:
                    continue
                crop, marks = cut_face(rgb, face.box, face.landmarks, max_side=512)
                crops.append(
                    {
                        "crop": crop,
                        "landmarks": marks,
                        "file": item["file"],
                        "frame": k,
                        "label": item["label"],
                        "family": item["family"],
                        "split": item["split"],
                        "face_px": round(face.size),
                    }
                )
        if n % 100 == 0:
            print(f"{n} items, {len(crops)} faces", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("wb") as fh:
        pickle.dump(crops, fh)
    print(f"{len(crops)} faces written to {args.out}")


if __name__ == "__main__":
    main()
