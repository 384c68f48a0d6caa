"""Measure PDQ distances: the same picture after transformations, and distinct pictures.

    .venv/bin/python benchmarks/hash_eval.py [--images DIR ...] [--out docs/measurements]

Images: ``../shared/fixtures/train/real`` and ``../shared/fixtures/train/ai`` by default. For each
image, the distance between its hash and the hash of each transformation (JPEG 90/75/50, 0.5x
and 0.25x resize, 90% and 75% centre crops, horizontal flip, 5 degree rotation, greyscale,
brightness +20%, screenshot-like 1.1x + JPEG 85); and the distances between all pairs of
distinct images. Reports, per candidate threshold, the share of transformed copies matched and
the number of distinct pairs that would falsely match. Writes ``hashing.md`` and
``hashing.json`` to ``--out``; no media is written.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provenance.hashing import MATCH_THRESHOLD, NEAR_THRESHOLD, hex_to_int, pdq  # noqa: E402

TRAIN = ROOT.parent / "shared" / "fixtures" / "train"
Transform = Callable[[Image.Image], Image.Image]
THRESHOLDS = (16, 24, 31, 40, 48, 56, 63, 70)


def _jpeg(q: int) -> Transform:
    def run(im: Image.Image) -> Image.Image:
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=q)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")

    return run


def _resize(f: float) -> Transform:
    return lambda im: im.resize(
        (max(8, round(im.width * f)), max(8, round(im.height * f))), Image.Resampling.BILINEAR
    )


def _crop(f: float) -> Transform:
    def run(im: Image.Image) -> Image.Image:
        w, h = round(im.width * f), round(im.height * f)
        x, y = (im.width - w) // 2, (im.height - h) // 2
        return im.crop((x, y, x + w, y + h))

    return run


TRANSFORMS: dict[str, Transform] = {
    "jpeg90": _jpeg(90),
    "jpeg75": _jpeg(75),
    "jpeg50": _jpeg(50),
    "resize0.5": _resize(0.5),
    "resize0.25": _resize(0.25),
    "crop90%": _crop(0.9),
    "crop75%": _crop(0.75),
    "flip": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "rotate5": lambda im: im.rotate(5, resample=Image.Resampling.BILINEAR, expand=False),
    "grey": lambda im: im.convert("L").convert("RGB"),
    "brightness+20%": lambda im: ImageEnhance.Brightness(im).enhance(1.2),
    "screenshot": lambda im: _jpeg(85)(_resize(1.1)(im)),
}


def h(im: Image.Image) -> tuple[int, int]:
    result = pdq(np.asarray(im.convert("RGB")))
    return hex_to_int(result.hex), result.quality


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--images", type=Path, nargs="*", default=[TRAIN / "real", TRAIN / "ai"])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "measurements")
    args = parser.parse_args()
    files = [
        p
        for d in args.images
        if d.is_dir()
        for p in sorted(d.iterdir())
        if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
    ]
    if not files:
        print("no images (needs ../shared/fixtures/train or --images)", file=sys.stderr)
        return 2
    base: list[int] = []
    qualities: list[int] = []
    per_transform: dict[str, list[int]] = {t: [] for t in TRANSFORMS}
    times: list[float] = []
    for path in files:
        with Image.open(path) as opened:
            im = opened.convert("RGB")
        start = time.perf_counter()
        value, quality = h(im)
        times.append((time.perf_counter() - start) * 1000)
        base.append(value)
        qualities.append(quality)
        for name, transform in TRANSFORMS.items():
            per_transform[name].append((value ^ h(transform(im))[0]).bit_count())
    distinct = [
        (base[i] ^ base[j]).bit_count() for i in range(len(base)) for j in range(i + 1, len(base))
    ]
    distinct_arr = np.asarray(distinct)
    results: dict[str, Any] = {
        "images": len(files),
        "distinct_pairs": len(distinct),
        "distinct": {
            "min": int(distinct_arr.min()),
            "p0.1": float(np.percentile(distinct_arr, 0.1)),
            "p1": float(np.percentile(distinct_arr, 1)),
            "median": float(np.median(distinct_arr)),
            "pairs_at_or_below": {t: int((distinct_arr <= t).sum()) for t in THRESHOLDS},
        },
        "transforms": {
            name: {
                "median": statistics.median(d),
                "p95": float(np.percentile(d, 95)),
                "max": max(d),
                "matched_at": {t: sum(1 for x in d if x <= t) / len(d) for t in THRESHOLDS},
            }
            for name, d in per_transform.items()
        },
        "low_quality_images": sum(1 for q in qualities if q < 50),
        "hash_ms_median": round(statistics.median(times), 2),
        "chosen": {"match": MATCH_THRESHOLD, "near": NEAR_THRESHOLD},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hashing.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results)
    (args.out / "hashing.md").write_text(text)
    print(text)
    return 0


def markdown(r: dict[str, Any]) -> str:
    head = " | ".join(f"<= {t}" for t in THRESHOLDS)
    lines = [
        "# PDQ hash distances: measurements",
        "",
        "Produced by `benchmarks/hash_eval.py` (do not edit by hand).",
        f"{r['images']} images ({r['low_quality_images']} with PDQ quality below 50), "
        f"{r['distinct_pairs']} distinct pairs; hashing took {r['hash_ms_median']} ms "
        "per image (median).",
        f"Chosen thresholds: match <= {r['chosen']['match']}, "
        f"near <= {r['chosen']['near']} (of 256 bits).",
        "",
        "## Same picture after a transformation: share matched at each threshold",
        "",
        f"| transformation | median | p95 | max | {head} |",
        "|---|---|---|---|" + "---|" * len(THRESHOLDS),
    ]
    for name, t in r["transforms"].items():
        cells = " | ".join(f"{t['matched_at'][k] * 100:.0f}%" for k in THRESHOLDS)
        lines.append(f"| {name} | {t['median']} | {t['p95']:.0f} | {t['max']} | {cells} |")
    d = r["distinct"]
    cells = " | ".join(str(d["pairs_at_or_below"][k]) for k in THRESHOLDS)
    lines += [
        "",
        "## Distinct pictures",
        "",
        f"Distance: min {d['min']}, 0.1th percentile {d['p0.1']}, 1st percentile {d['p1']}, "
        f"median {d['median']}.",
        "",
        f"| pairs at or below | {head} |",
        "|---|" + "---|" * len(THRESHOLDS),
        f"| count | {cells} |",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
