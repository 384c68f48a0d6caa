"""Detector time per image (by size) and whole-pipeline time per second of video.

    .venv/bin/python benchmarks/bench_detectors.py [--repeat 5]

Images are drawn by the samples script at 512x512, 1280x720 and 1920x1080 and scored by each
built-in detector (median of ``--repeat`` runs). The video is a 10 s 1280x720 MP4 written to a
temporary folder; ``analyze`` samples one frame per second (the default) and runs PDQ and every
detector on each. Medians; compare ratios, the machine is noisy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detectors.registry import DetectorSet, Registry  # noqa: E402
from samples.make_samples import draw_scene  # noqa: E402
from service.pipeline import AnalyzeOptions, analyze  # noqa: E402


def median_ms(fn: object, repeat: int) -> float:
    fn()  # type: ignore[operator]
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(runs)


def write_video(
    path: Path, seconds: int = 10, fps: int = 25, size: tuple[int, int] = (1280, 720)
) -> None:
    w, h = size
    scene = draw_scene(w * 2, h, seed=5)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    for i in range(seconds * fps):
        off = int(i * w / (seconds * fps))
        writer.write(np.ascontiguousarray(scene[:, off : off + w, ::-1]))
    writer.release()


def main() -> int:
    parser = argparse.ArgumentParser(description="Detector and video timing")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    detectors = DetectorSet.load(Registry())
    for name, reason in detectors.disabled:
        print(f"disabled: {name}: {reason}")
    print(
        f"{'detector':20s} " + " ".join(f"{s:>12s}" for s in ("512x512", "1280x720", "1920x1080"))
    )
    for det in detectors.detectors:
        cells = []
        for w, h in ((512, 512), (1280, 720), (1920, 1080)):
            rgb = draw_scene(w, h, seed=9)
            cells.append(
                f"{median_ms(lambda d=det, x=rgb: d.analyze_image(x), args.repeat):9.1f} ms"
            )
        print(f"{det.card.name:20s} " + " ".join(f"{c:>12s}" for c in cells))
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "clip.mp4"
        write_video(video)
        options = AnalyzeOptions(detectors=detectors)
        total = median_ms(lambda: analyze(video, options), max(1, args.repeat // 2))
        report = analyze(video, options).to_dict()
        seconds = report["media"]["duration_s"] or 1
        print(
            f"video 1280x720, {seconds:.0f} s, {report['media']['frames_analyzed']} frames: "
            f"{total:.0f} ms in all, {total / seconds:.0f} ms per second of video"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
