"""Detector time per image (by size), all detectors together, and whole-pipeline time per
second of video.

    .venv/bin/python benchmarks/bench_detectors.py [--repeat 5] [--face]

Images are drawn by the samples script at 512x512, 1280x720 and 1920x1080 (with ``--face``, a
photograph with a face from ``../shared/fixtures`` is pasted in, so the face detectors have a
face to judge) and scored by each detector the default configuration runs (median of
``--repeat`` runs). Each detector alone is timed with the face detector's per-image cache (shared
by the face-manipulation detector) cleared first, so it never hides work; "all"
is every detector in turn on one image, as the pipeline runs them (the issue's budget: 150 ms
for a 2 MP image). The video is a 10 s 1280x720 MP4 written to a temporary folder; ``analyze``
samples one frame per second (the default) and runs PDQ and every detector on each. Medians;
compare ratios, the machine is noisy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from detectors.base import Detector  # noqa: E402
from detectors.faces import clear_face_cache  # noqa: E402
from detectors.registry import DetectorSet, Registry  # noqa: E402
from samples.make_samples import draw_scene  # noqa: E402
from service.pipeline import AnalyzeOptions, analyze  # noqa: E402


def with_face(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` with a photographed face pasted in (a third of the image's height)."""
    from PIL import Image

    path = ROOT.parent / "shared" / "fixtures" / "train" / "real" / "real_pypi-mpl_grace_hopper.jpg"
    face = np.asarray(Image.open(path).convert("RGB"))
    h = rgb.shape[0] // 3 * 2
    w = round(face.shape[1] * h / face.shape[0])
    out = rgb.copy()
    out[:h, :w] = cv2.resize(face, (w, h), interpolation=cv2.INTER_AREA)
    return out


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
    parser.add_argument("--face", action="store_true", help="paste a photographed face in")
    parser.add_argument("--json", type=Path, help="also write the medians here")
    args = parser.parse_args()
    record: dict[str, Any] = {
        "command": "benchmarks/bench_detectors.py " + " ".join(sys.argv[1:]),
        "date": dt.date.today().isoformat(),
        "repeat": args.repeat,
        "sizes": ["512x512", "1280x720", "1920x1080"],
        "detectors": {},
    }
    detectors = DetectorSet.load(Registry())
    for name, reason in detectors.disabled:
        print(f"disabled: {name}: {reason}")
    print(
        f"{'detector':20s} " + " ".join(f"{s:>12s}" for s in ("512x512", "1280x720", "1920x1080"))
    )
    sizes = ((512, 512), (1280, 720), (1920, 1080))
    images = {}
    for w, h in sizes:
        rgb = draw_scene(w, h, seed=9)
        images[(w, h)] = with_face(rgb) if args.face else rgb
    for det in detectors.detectors:
        medians = []
        for size in sizes:
            rgb = images[size]

            def alone(d: Detector = det, x: np.ndarray = rgb) -> None:
                clear_face_cache()
                d.analyze_image(x)

            medians.append(median_ms(alone, args.repeat))
        record["detectors"][det.card.name] = medians
        print(f"{det.card.name:20s} " + " ".join(f"{m:9.1f} ms" for m in medians))

    def all_detectors(x: np.ndarray) -> None:
        clear_face_cache()
        for d in detectors.detectors:
            d.analyze_image(x)

    medians = [median_ms(lambda x=images[s]: all_detectors(x), args.repeat) for s in sizes]
    record["detectors"]["all, in turn"] = medians
    print(f"{'all, in turn':20s} " + " ".join(f"{m:9.1f} ms" for m in medians))
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "clip.mp4"
        write_video(video)
        options = AnalyzeOptions(detectors=detectors)
        total = median_ms(lambda: analyze(video, options), max(1, args.repeat // 2))
        report = analyze(video, options).to_dict()
        seconds = report["media"]["duration_s"] or 1
        record["video"] = (
            f"1280x720, {seconds:.0f} s, {report['media']['frames_analyzed']} frames: "
            f"{total:.0f} ms in all, {total / seconds:.0f} ms per second of video"
        )
        print(f"video {record['video']}")
    if args.json:
        args.json.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
