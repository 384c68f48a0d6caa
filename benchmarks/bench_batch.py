"""Batch throughput (files/s) for 1 and 2 workers over a folder of varied files.

    .venv/bin/python benchmarks/bench_batch.py [--files 1000]

The folder is made in a temporary directory from the project's samples and drawn pictures:
re-encodings at several JPEG qualities and sizes, PNGs, the signed samples and the video, so the
mix exercises every stage. Each run starts from an empty output; a third run resumes a finished
output to show that resuming costs only hashing.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from samples.make_samples import draw_generated, draw_scene  # noqa: E402
from service.batch import run  # noqa: E402


def make_folder(folder: Path, count: int) -> None:
    samples = sorted(
        p for p in (ROOT / "samples").iterdir() if p.suffix in {".jpg", ".png", ".mp4"}
    )
    for i in range(count):
        kind = i % 10
        if kind < len(samples) and i < len(samples) * 10:
            shutil.copy(
                samples[kind % len(samples)],
                folder / f"{i:05d}{samples[kind % len(samples)].suffix}",
            )
            continue
        w, h = (640, 480) if i % 3 else (1024, 768)
        rgb = draw_scene(w, h, seed=i) if i % 2 else draw_generated(w, h, seed=i)
        buf = io.BytesIO()
        if i % 4 == 0:
            Image.fromarray(rgb).save(buf, format="PNG")
            (folder / f"{i:05d}.png").write_bytes(buf.getvalue())
        else:
            Image.fromarray(rgb).save(buf, format="JPEG", quality=60 + (i * 7) % 35)
            (folder / f"{i:05d}.jpg").write_bytes(buf.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description="Batch throughput")
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "incoming"
        folder.mkdir()
        make_folder(folder, args.files)
        for workers in (1, 2):
            out = Path(tmp) / f"results-{workers}.csv"
            start = time.monotonic()
            summary = run([folder], out, workers=workers)
            elapsed = time.monotonic() - start
            print(
                f"{workers} worker(s): {summary.analysed} analysed, {summary.errors} errors in "
                f"{elapsed:.1f} s = {summary.analysed / elapsed:.2f} files/s"
            )
        start = time.monotonic()
        summary = run([folder], Path(tmp) / "results-2.csv", resume=True)
        print(
            f"resume of a finished run: {summary.skipped} skipped "
            f"in {time.monotonic() - start:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
