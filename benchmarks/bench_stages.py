"""Image analysis against the floor: each stage's time, per megapixel, and the whole report.

    .venv/bin/python benchmarks/bench_stages.py [--repeat 5] [--per-size 3] [--images DIR]
        [--json FILE]

The **floor** is what any tool must do to a file: read it, hash it (sha256), run the bare
c2pa-python Reader and decode it once with Pillow. For JPEGs of 2, 5 and 12 megapixels (drawn
by the samples script with photographic grain, see :func:`make_images`; ``--images`` adds a
folder of real photographs, for example the project's git-ignored corpus), each repetition
times, one after the other so that the machine's noise falls on all three alike:

- the floor;
- ``analyze`` with no detectors (every stage except the pixel detectors: intake, C2PA,
  decoding, metadata, watermarks, abstentions, PDQ, verdict);
- ``analyze`` with the shipped detectors, as the CLI and the service load them.

Printed per size: medians over files of each file's median, the two ratios to the floor, and
each stage's milliseconds per megapixel. The targets (issue 15): no-detector analysis at most
3x the floor from 2 to 12 MP; the full report at most 20x the floor at 2 MP. Compare ratios,
not milliseconds: the machine is shared.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.options import AnalyzeOptions  # noqa: E402
from service.pipeline import analyze  # noqa: E402

SIZES = {"2 MP": (1920, 1080), "5 MP": (2736, 1824), "12 MP": (4000, 3000)}
STAGES = ("intake", "c2pa", "decode", "metadata", "watermarks", "abstentions", "hashing")


def make_images(folder: Path, per_size: int) -> list[tuple[str, Path]]:
    """Drawn scenes with grain (Gaussian, sigma 9) as JPEG quality 90: about 0.31 MB per
    megapixel, the median of the corpus' camera photographs (a smooth drawing compresses to
    half that and decodes faster than any photograph, which would flatter the floor)."""
    import numpy as np

    from samples.make_samples import draw_scene, encode

    out = []
    for label, (w, h) in SIZES.items():
        for seed in range(per_size):
            rng = np.random.default_rng(seed)
            rgb = draw_scene(w, h, seed=40 + seed).astype(np.float32)
            rgb += rng.normal(0.0, 9.0, rgb.shape).astype(np.float32)
            path = folder / f"scene_{w}x{h}_{seed}.jpg"
            path.write_bytes(encode(np.clip(rgb, 0, 255).astype(np.uint8), "JPEG", quality=90))
            out.append((label, path))
    return out


def photos(folder: Path) -> list[tuple[str, Path]]:
    out = []
    for path in sorted(folder.rglob("*.jp*g")):
        with Image.open(path) as im:
            mp = im.width * im.height / 1e6
        if 1.8 <= mp <= 13:
            out.append((f"photos {'2-4' if mp < 4 else '4-8' if mp < 8 else '8-13'} MP", path))
    return out[:: max(1, len(out) // 30)]


def floor(path: Path) -> float:
    import c2pa

    start = time.perf_counter()
    data = path.read_bytes()
    hashlib.sha256(data).hexdigest()
    # Most files carry no manifest: the Reader raises.
    with contextlib.suppress(Exception), c2pa.Reader(str(path)) as reader:
        reader.json()
    with Image.open(path) as im:
        im.convert("RGB")
    return time.perf_counter() - start


def timed(path: Path, options: AnalyzeOptions) -> tuple[float, dict[str, float]]:
    start = time.perf_counter()
    report = analyze(path, options)
    return time.perf_counter() - start, dict(report.timings_ms)


def shipped_options() -> AnalyzeOptions:
    from service.config import load_config

    return load_config().analyze_options()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--per-size", type=int, default=3, help="drawn JPEGs per size")
    parser.add_argument("--images", type=Path, help="also a folder of JPEG photographs")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    bare, full = AnalyzeOptions(), shipped_options()
    with tempfile.TemporaryDirectory() as tmp:
        files = make_images(Path(tmp), args.per_size)
        if args.images:
            files += photos(args.images)
        rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for label, path in files:
            with Image.open(path) as im:
                mp = im.width * im.height / 1e6
            timed(path, full)  # first use: caches, lazy sessions
            per: dict[str, list[float]] = defaultdict(list)
            for _ in range(args.repeat):
                per["floor"].append(floor(path))
                wall, stages = timed(path, bare)
                per["bare"].append(wall)
                for stage in STAGES:
                    per[stage].append(stages.get(stage, 0.0) / 1000 / mp)
                wall, stages = timed(path, full)
                per["full"].append(wall)
                per["detectors"].append(stages.get("detectors", 0.0) / 1000)
            row = rows[label]
            row["mp"].append(mp)
            for key, values in per.items():
                row[key].append(statistics.median(values))
            row["bare_ratio"].append(statistics.median(per["bare"]) / row["floor"][-1])
            row["full_ratio"].append(statistics.median(per["full"]) / row["floor"][-1])
    result: dict[str, Any] = {"repeat": args.repeat, "sizes": {}}
    print(
        f"{'images':16s} {'n':>2s} {'floor':>7s} {'no det.':>8s} {'ratio':>6s} {'full':>7s} "
        f"{'ratio':>6s} {'det.':>6s}  ms per MP: " + " ".join(f"{s[:8]:>8s}" for s in STAGES)
    )
    for label, row in rows.items():
        med = {k: statistics.median(v) for k, v in row.items()}
        result["sizes"][label] = {
            "files": len(row["mp"]),
            "megapixels": round(med["mp"], 2),
            "floor_ms": round(med["floor"] * 1000, 1),
            "no_detectors_ms": round(med["bare"] * 1000, 1),
            "no_detectors_ratio": round(med["bare_ratio"], 2),
            "full_ms": round(med["full"] * 1000, 1),
            "full_ratio": round(med["full_ratio"], 2),
            "detectors_ms": round(med["detectors"] * 1000, 1),
            "ms_per_mp": {s: round(med[s] * 1000, 1) for s in STAGES},
        }
        print(
            f"{label:16s} {len(row['mp']):2d} {med['floor'] * 1000:6.0f}ms "
            f"{med['bare'] * 1000:6.0f}ms {med['bare_ratio']:5.1f}x {med['full'] * 1000:5.0f}ms "
            f"{med['full_ratio']:5.1f}x {med['detectors'] * 1000:4.0f}ms  "
            + " ".join(f"{med[s] * 1000:8.1f}" for s in STAGES)
        )
    print(f"(medians over files of each file's median of {args.repeat} runs)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
