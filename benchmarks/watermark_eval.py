"""Measure the Stable Diffusion watermark decoder: false positives, robustness, real AI images.

    .venv/bin/python benchmarks/watermark_eval.py [--photos DIR] [--limit N] [--out DIR]

1. False positives: every photograph in ``../shared/fixtures/train/real`` (or ``--photos``), in
   five variants each (original, JPEG 90, JPEG 75, 0.5x resize, 0.75x resize), decoded for all
   three schemes. Reports the highest bit counts seen per scheme and how many variants crossed
   the threshold.
2. Robustness: photographs centre-cropped to 512x512 and 768x768 (generator sizes), marked with
   each scheme by the project's encoder (bit-identical to the reference embedder), then: PNG,
   JPEG 95/90/75, 0.5x resize, 0.9x resize (decoded after resizing back), 90% centre crop,
   screenshot-like (1.1x resize + JPEG 85). Reports the detection rate and median bits matched.
3. Real AI images: every file in ``../shared/fixtures/train/ai``, for marks left by generators.

Writes ``watermarks.md`` and ``watermarks.json`` to ``--out``. No media is written.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provenance.watermarks import SCHEMES, detect, embed, threshold  # noqa: E402

TRAIN = ROOT.parent / "shared" / "fixtures" / "train"
Transform = Callable[[np.ndarray], np.ndarray]


def load_rgb(path: Path) -> np.ndarray | None:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as exc:  # a measurement script reports and goes on
        print(f"skip {path.name}: {exc}", file=sys.stderr)
        return None


def jpeg(quality: int) -> Transform:
    def run(rgb: np.ndarray) -> np.ndarray:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))

    return run


def resize(factor: float) -> Transform:
    def run(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        size = (max(8, round(w * factor)), max(8, round(h * factor)))
        interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
        return cv2.resize(rgb, size, interpolation=interp)

    return run


def crop(fraction: float) -> Transform:
    def run(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        ch, cw = round(h * fraction), round(w * fraction)
        y, x = (h - ch) // 2, (w - cw) // 2
        return np.ascontiguousarray(rgb[y : y + ch, x : x + cw])

    return run


def screenshot(rgb: np.ndarray) -> np.ndarray:
    return jpeg(85)(resize(1.1)(rgb))


UNMARKED: dict[str, Transform] = {
    "original": lambda x: x,
    "jpeg90": jpeg(90),
    "jpeg75": jpeg(75),
    "resize0.5": resize(0.5),
    "resize0.75": resize(0.75),
}
MARKED: dict[str, Transform] = {
    "png (untouched)": lambda x: x,
    "jpeg95": jpeg(95),
    "jpeg90": jpeg(90),
    "jpeg75": jpeg(75),
    "resize0.5": resize(0.5),
    "resize0.9 (resized back)": resize(0.9),
    "crop90%": crop(0.9),
    "screenshot (1.1x + jpeg85)": screenshot,
}


def center(rgb: np.ndarray, side: int) -> np.ndarray | None:
    h, w = rgb.shape[:2]
    if h < side or w < side:
        return None
    y, x = (h - side) // 2, (w - side) // 2
    return np.ascontiguousarray(rgb[y : y + side, x : x + side])


def photos(folder: Path, limit: int | None) -> Iterator[tuple[str, np.ndarray]]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    for path in files[:limit]:
        rgb = load_rgb(path)
        if rgb is not None:
            yield path.name, rgb


def false_positives(folder: Path, limit: int | None) -> dict[str, Any]:
    counts: dict[str, list[int]] = defaultdict(list)
    flagged: list[str] = []
    n = 0
    for name, rgb in photos(folder, limit):
        for tname, transform in UNMARKED.items():
            n += 1
            for f in detect(transform(rgb)):
                counts[f.scheme].append(f.bits_matched)
                if f.detected:
                    flagged.append(f"{name} [{tname}] {f.scheme} {f.bits_matched}/{f.bits_total}")
    per_scheme = {}
    for scheme in SCHEMES:
        values = counts[scheme.name]
        per_scheme[scheme.name] = {
            "bits_total": len(scheme.bits),
            "threshold_single_size": threshold(len(scheme.bits)),
            "max_bits_matched": max(values) if values else None,
            "p99_bits_matched": float(np.percentile(values, 99)) if values else None,
            "median_bits_matched": statistics.median(values) if values else None,
        }
    return {
        "variants": n,
        "flagged": flagged,
        "false_positive_rate": len(flagged) / n if n else None,
        "rule_of_three_upper_95": 3 / n if n else None,
        "per_scheme": per_scheme,
    }


def robustness(folder: Path, limit: int | None) -> dict[str, Any]:
    table: dict[str, dict[str, dict[str, list[Any]]]] = {}
    for side in (512, 768):
        marked_sets = 0
        for _, rgb in photos(folder, limit):
            base = center(rgb, side)
            if base is None:
                continue
            marked_sets += 1
            for scheme in SCHEMES:
                marked = embed(base, scheme.bits)
                for tname, transform in MARKED.items():
                    f = next(x for x in detect(transform(marked), (scheme,)))
                    row = table.setdefault(f"{side}px {tname}", {}).setdefault(
                        scheme.name, {"detected": [], "bits": []}
                    )
                    row["detected"].append(f.detected)
                    row["bits"].append(f.bits_matched)
        print(f"robustness: {marked_sets} photos at {side}px", file=sys.stderr)
    out: dict[str, Any] = {}
    for tname, schemes in table.items():
        out[tname] = {
            s: {
                "n": len(v["detected"]),
                "detection_rate": sum(v["detected"]) / len(v["detected"]),
                "median_bits": statistics.median(v["bits"]),
            }
            for s, v in schemes.items()
        }
    return out


def real_ai(folder: Path) -> dict[str, Any]:
    hits: list[str] = []
    n = 0
    best: dict[str, int] = defaultdict(int)
    for name, rgb in photos(folder, None):
        n += 1
        for f in detect(rgb):
            best[f.scheme] = max(best[f.scheme], f.bits_matched)
            if f.detected:
                hits.append(f"{name}: {f.scheme} {f.bits_matched}/{f.bits_total} at {f.size_tried}")
    return {"images": n, "detections": hits, "max_bits_matched": dict(best)}


def timing() -> dict[str, float]:
    rng = np.random.default_rng(0)
    out = {}
    for w, h in ((512, 512), (1024, 1024), (1000, 750)):
        rgb = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        detect(rgb)
        runs = []
        for _ in range(9):
            start = time.perf_counter()
            detect(rgb)
            runs.append((time.perf_counter() - start) * 1000)
        out[f"{w}x{h}"] = round(statistics.median(runs), 1)
    return out


def markdown(results: dict[str, Any]) -> str:
    fp = results["false_positives"]
    lines = [
        "# Stable Diffusion watermark decoder: measurements",
        "",
        "Produced by `benchmarks/watermark_eval.py` (do not edit by hand).",
        f"Photographs: `{results['photos']}`.",
        "",
        "## False positives on unmarked photographs",
        "",
        f"{fp['variants']} variants (original, JPEG 90, JPEG 75, 0.5x, 0.75x of each photograph); "
        f"flagged: {len(fp['flagged'])} "
        f"(rate {fp['false_positive_rate']:.4f}, "
        f"95% upper bound {fp['rule_of_three_upper_95']:.4f}).",
        "",
        "| scheme | bits | threshold (1 size) | max matched | 99th pct | median |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in fp["per_scheme"].items():
        lines.append(
            f"| {name} | {s['bits_total']} | {s['threshold_single_size']} | "
            f"{s['max_bits_matched']} | {s['p99_bits_matched']} | {s['median_bits_matched']} |"
        )
    lines += ["", "## Robustness of marks made by the reference-identical encoder", ""]
    lines += ["| image, transformation | " + " | ".join(s.name for s in SCHEMES) + " |"]
    lines += ["|---|" + "---|" * len(SCHEMES)]
    for tname, schemes in results["robustness"].items():
        cells = []
        for s in SCHEMES:
            v = schemes.get(s.name)
            rate = f"{v['detection_rate'] * 100:.0f}%" if v else "-"
            cells.append(
                f"{rate} (median {v['median_bits']}/{len(s.bits)}, n={v['n']})" if v else "-"
            )
        lines.append(f"| {tname} | " + " | ".join(cells) + " |")
    ai = results["real_ai"]
    lines += [
        "",
        "## Real AI images from the training pool",
        "",
        f"{ai['images']} images; detections: {len(ai['detections'])}; "
        f"highest bit counts: {ai['max_bits_matched']}.",
    ]
    lines += [f"- {h}" for h in ai["detections"][:50]]
    lines += ["", "## Decode time (median of 9, this machine)", ""]
    lines += [f"- {k}: {v} ms" for k, v in results["timing_ms"].items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--photos", type=Path, default=TRAIN / "real")
    parser.add_argument("--ai", type=Path, default=TRAIN / "ai")
    parser.add_argument("--limit", type=int, default=None, help="photographs to use at most")
    parser.add_argument("--robust-limit", type=int, default=40)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "measurements")
    args = parser.parse_args()
    if not args.photos.is_dir():
        print(f"no photographs at {args.photos} (needs ../shared/fixtures/train)", file=sys.stderr)
        return 2
    results = {
        "photos": str(
            args.photos.relative_to(ROOT.parent)
            if args.photos.is_relative_to(ROOT.parent)
            else args.photos
        ),
        "false_positives": false_positives(args.photos, args.limit),
        "robustness": robustness(args.photos, args.robust_limit),
        "real_ai": real_ai(args.ai)
        if args.ai.is_dir()
        else {"images": 0, "detections": [], "max_bits_matched": {}},
        "timing_ms": timing(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "watermarks.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "watermarks.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
