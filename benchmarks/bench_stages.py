"""Per-image time of each analysis stage (the report's ``timings_ms``).

    .venv/bin/python benchmarks/bench_stages.py [--repeat 3] [--limit 60]

Runs ``service.pipeline.analyze`` on the project's samples and, where ``../shared`` is present,
on photographs and AI images from ``../shared/fixtures/train``. Each file is analysed
``--repeat`` times; the per-file median of each stage is taken, then the median and 90th
percentile over files are printed, grouped by image size. Compare ratios between stages: the
machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.pipeline import AnalyzeOptions, analyze  # noqa: E402

TRAIN = ROOT.parent / "shared" / "fixtures" / "train"
STAGES = ("intake", "c2pa", "decode", "metadata", "watermarks", "hashing", "verdict", "total")


def large_photo(folder: Path) -> Path:
    """A 4000x3000 JPEG (12 MP) drawn by the samples script, written to a temporary folder."""
    from samples.make_samples import draw_scene, encode

    tile = draw_scene(1000, 750, seed=31)
    path = folder / "large_12mp.jpg"
    path.write_bytes(encode(np.tile(tile, (4, 4, 1)), "JPEG", quality=90))
    return path


def files(limit: int) -> list[Path]:
    out = sorted(p for p in (ROOT / "samples").iterdir() if p.suffix in {".jpg", ".png"})
    for sub in ("real", "ai"):
        folder = TRAIN / sub
        if folder.is_dir():
            out += sorted(folder.iterdir())[: limit // 2]
    return out


def size_class(pixels: int) -> str:
    if pixels <= 300_000:
        return "<= 0.3 MP"
    if pixels <= 1_100_000:
        return "0.3-1.1 MP"
    return "> 1.1 MP"


def main() -> int:
    parser = argparse.ArgumentParser(description="Per-stage analysis time")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=int, default=60, help="training images to add")
    args = parser.parse_args()
    options = AnalyzeOptions()
    groups: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    tmp = tempfile.TemporaryDirectory()
    for path in [*files(args.limit), large_photo(Path(tmp.name))]:
        runs = [analyze(path, options).to_dict() for _ in range(args.repeat)]
        media = runs[0]["media"]
        group = size_class((media["width"] or 0) * (media["height"] or 0))
        for stage in STAGES:
            values = [r["timings_ms"].get(stage) for r in runs]
            if all(v is not None for v in values):
                groups[group][stage].append(statistics.median(values))
        groups[group]["_n"].append(1)
    print(f"{'size':12s} {'files':>5s} " + " ".join(f"{s:>14s}" for s in STAGES))
    for group in ("<= 0.3 MP", "0.3-1.1 MP", "> 1.1 MP"):
        if group not in groups:
            continue
        stats = groups[group]
        cells = []
        for stage in STAGES:
            values = stats.get(stage, [])
            if values:
                cells.append(f"{statistics.median(values):6.1f}/{np.percentile(values, 90):6.1f}")
            else:
                cells.append(f"{'-':>13s}")
        print(f"{group:12s} {len(stats['_n']):5d} " + " ".join(f"{c:>14s}" for c in cells))
    print(f"(ms, median/90th percentile over files; each file the median of {args.repeat} runs)")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
