"""Whole-pipeline speed and peak memory on video: x real time per clip type and size.

    .venv/bin/python benchmarks/bench_video.py [--duration 60] [--repeat 3] [--fps 25]
        [--sizes 720p,1080p] [--scenes static,panning,cuts] [--clips DIR] [--json FILE]
        [--compare OTHER_SOURCE_TREE]

The clips are drawn by this script (the samples script's ``draw_scene``/``draw_generated``, no
third-party media) into a temporary folder, or into ``--clips`` where they are kept and reused
by later runs (so runs before and after a change read the same files):

* ``static``: one still scene with slight sensor-like noise on every frame;
* ``panning``: a scene three frames wide, scrolled back and forth (a few px a frame);
* ``cuts``: six different scenes, each slowly panned, with a hard cut every 3.3 s.

They are encoded as H.264 (libx264, ``veryfast``, CRF 23, a keyframe every ``--gop`` seconds
and at scene cuts, B-frames) when PyAV is importable (``pip install av``: a benchmark-only
tool, not a Shingan dependency; OpenCV's wheel has no H.264 encoder). Without it they are
MPEG-4 Part 2 (``mp4v``) from OpenCV, which puts a keyframe every 12 frames: decoding then
costs less than on real footage, and the table says so.

Each clip is analysed in a fresh Python process that loads the default configuration (the
shipped detectors, as the CLI builds them), warms up on a sample image (models loaded), then
runs ``service.pipeline.analyze`` ``--repeat`` times. Reported per clip: duration, median wall
time, x real time (duration / median wall time), the report's ``timings_ms`` for frame
sampling (``frames``) and frame analysis (``frame_analysis``), frames analysed, and the
process's peak resident set (``VmHWM``) after warm-up and at the end. Frames are read while
earlier ones are analysed, so the sampling and analysis times overlap (each is the time its
thread spent) and their sum exceeds the wall time. Targets (the performance issue): 720p at
least 10x real time, 1080p at least 5x, peak at most 1 GiB. The machine is shared and noisy:
compare within one run; ``--compare`` analyses each clip with another source tree (say, a
``git worktree`` of the commit before a change) just before this one, so both meet the same
load. The JSON keeps each clip's analysed times, frame hashes, per-frame scores and verdict for
checking that a change analysed the same frames the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}
SCENES = ("static", "panning", "cuts")
TARGET_X = {"720p": 10.0, "1080p": 5.0}
TARGET_PEAK_MB = 1024.0
SHOT_S = 3.3


# --- clips ------------------------------------------------------------------------------------


def _noise_pool(w: int, h: int, n: int = 6, sigma: float = 2.5) -> list[tuple[Any, Any]]:
    """Pairs of (add, subtract) uint8 noise images: saturating adds are cheap per frame."""
    rng = np.random.default_rng(7)
    pool = []
    for _ in range(n):
        noise = rng.normal(0, sigma, (h, w, 3))
        pool.append(
            (
                np.clip(noise, 0, 255).astype(np.uint8),
                np.clip(-noise, 0, 255).astype(np.uint8),
            )
        )
    return pool


def _noisy(frame: np.ndarray, noise: tuple[Any, Any]) -> np.ndarray:
    import cv2

    out: np.ndarray = cv2.subtract(cv2.add(frame, noise[0]), noise[1])
    return out


def frames(scene: str, w: int, h: int, fps: int, duration_s: float) -> Iterator[np.ndarray]:
    """The clip's frames, ``HxWx3`` uint8 RGB."""
    from samples.make_samples import draw_generated, draw_scene

    count = round(duration_s * fps)
    pool = _noise_pool(w, h)
    speed = max(1, round(3 * w / 1280))  # px a frame
    if scene == "static":
        still = draw_scene(w, h, seed=21)
        for i in range(count):
            yield _noisy(still, pool[i % len(pool)])
    elif scene == "panning":
        wide = draw_scene(w * 3, round(h * 1.2), seed=22)
        span = wide.shape[1] - w
        for i in range(count):
            x = (i * speed) % (2 * span)
            x = x if x <= span else 2 * span - x  # back and forth
            y = round((wide.shape[0] - h) * (0.5 + 0.5 * np.sin(i / (fps * 7.0))))
            yield _noisy(np.ascontiguousarray(wide[y : y + h, x : x + w]), pool[i % len(pool)])
    elif scene == "cuts":
        shots = []
        for k in range(6):
            draw = draw_generated if k % 3 == 2 else draw_scene
            shots.append(draw(round(w * 1.25), h, 40 + k))
        per_shot = round(SHOT_S * fps)
        for i in range(count):
            shot = shots[(i // per_shot) % len(shots)]
            x = min(shot.shape[1] - w, (i % per_shot) * speed // 2)
            yield _noisy(np.ascontiguousarray(shot[:, x : x + w]), pool[i % len(pool)])
    else:
        raise ValueError(f"unknown scene {scene}")


def have_pyav() -> bool:
    try:
        import av  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


def encode(path: Path, scene: str, size: str, fps: int, duration_s: float, gop_s: float) -> str:
    """Write the clip; returns the codec used."""
    w, h = SIZES[size]
    if have_pyav():
        import av  # type: ignore[import-not-found,unused-ignore]

        g = max(1, round(gop_s * fps))
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {
                "preset": "veryfast",
                "crf": "23",
                "x264-params": f"keyint={g}:min-keyint={min(g, fps)}",
            }
            for rgb in frames(scene, w, h, fps, duration_s):
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return "h264"
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write MP4 here")
    try:
        for rgb in frames(scene, w, h, fps, duration_s):
            writer.write(np.ascontiguousarray(rgb[..., ::-1]))
    finally:
        writer.release()
    return "mp4v"


def clip(folder: Path, scene: str, size: str, args: argparse.Namespace) -> tuple[Path, str]:
    codec = "h264" if have_pyav() else "mp4v"
    name = f"{scene}_{size}_{args.duration:g}s_{args.fps}fps_gop{args.gop:g}_{codec}.mp4"
    path = folder / name
    if not path.is_file():
        started = time.perf_counter()
        tmp = path.with_suffix(".part.mp4")
        encode(tmp, scene, size, args.fps, args.duration, args.gop)
        tmp.rename(path)
        print(f"  made {name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path, codec


# --- the analysing process ------------------------------------------------------------------


def _vm(field: str) -> float:
    """``VmHWM`` / ``VmRSS`` of this process in MB (ru_maxrss would carry a parent's over exec)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(path: Path, repeat: int, root: Path) -> dict[str, Any]:
    """Analyse ``path`` ``repeat`` times in this (fresh) process with the code in ``root``;
    what the parent reports."""
    sys.path.insert(0, str(root))
    from service.config import load_config
    from service.memory import tune_malloc
    from service.pipeline import analyze

    tune_malloc()
    options = load_config(env={}).analyze_options()
    analyze(root / "samples" / "camera_capture.jpg", options)  # load the models, warm caches
    base = _vm("VmHWM")
    runs = []
    report: dict[str, Any] = {}
    for _ in range(repeat):
        started = time.perf_counter()
        report = analyze(path, options).to_dict()
        runs.append(
            {
                "wall_s": time.perf_counter() - started,
                "timings_ms": report["timings_ms"],
            }
        )
    timeline = report["timeline"]
    return {
        "base_mb": round(base, 1),
        "peak_mb": round(_vm("VmHWM"), 1),
        "runs": runs,
        "duration_s": report["media"]["duration_s"],
        "frames_analyzed": report["media"]["frames_analyzed"],
        "times": [e["time_s"] for e in timeline],
        "pdq": [e.get("pdq") for e in timeline],
        "frame_scores": [e["scores"] for e in timeline],
        "verdict": report["verdict"]["label"],
        "detectors": {d["name"]: d.get("score") for d in report["detectors"]},
        "warnings": report["warnings"],
    }


def run_child(path: Path, repeat: int, root: Path = ROOT) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(path), "--repeat", str(repeat), "--root", root],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- main -------------------------------------------------------------------------------------


def summarise(
    scene: str, size: str, codec: str, raw: dict[str, Any], code: str = "this tree"
) -> dict[str, Any]:
    runs = raw["runs"]
    wall = statistics.median(r["wall_s"] for r in runs)
    duration = raw["duration_s"] or 0.0

    def stage(name: str) -> float | None:
        values = [r["timings_ms"].get(name) for r in runs]
        return round(statistics.median(values) / 1000, 2) if all(values) else None

    x = duration / wall if wall else 0.0
    return {
        "clip": f"{scene} {size}",
        "code": code,
        "scene": scene,
        "size": size,
        "codec": codec,
        "duration_s": duration,
        "wall_s": round(wall, 2),
        "x_real_time": round(x, 2),
        "sampling_s": stage("frames"),
        "analysis_s": stage("frame_analysis"),
        "frames": raw["frames_analyzed"],
        "base_mb": raw["base_mb"],
        "peak_mb": raw["peak_mb"],
        "meets_speed": x >= TARGET_X[size],
        "meets_memory": raw["peak_mb"] <= TARGET_PEAK_MB,
        "verdict": raw["verdict"],
        "detectors": raw["detectors"],
        "times": raw["times"],
        "pdq": raw["pdq"],
        "frame_scores": raw["frame_scores"],
        "warnings": raw["warnings"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="Video analysis speed and peak memory")
    parser.add_argument("--duration", type=float, default=60.0, help="clip length, seconds")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--gop", type=float, default=4.0, help="seconds between keyframes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="720p,1080p")
    parser.add_argument("--scenes", default=",".join(SCENES))
    parser.add_argument("--clips", type=Path, help="keep (and reuse) the clips in this folder")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    parser.add_argument(
        "--compare",
        type=Path,
        help="another source tree (e.g. `git worktree add /tmp/base main`) run on each clip "
        "just before this one, so that both meet the same load",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.repeat, args.root.resolve())))
        return 0

    tmp = None
    if args.clips:
        folder = args.clips
        folder.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_video_")
        folder = Path(tmp.name)
    results = []
    try:
        for size in args.sizes.split(","):
            for scene in args.scenes.split(","):
                path, codec = clip(folder, scene, size, args)
                if args.compare:
                    print(f"  analysing {path.name} with {args.compare}", file=sys.stderr)
                    raw = run_child(path, args.repeat, args.compare.resolve())
                    results.append(summarise(scene, size, codec, raw, str(args.compare)))
                print(f"  analysing {path.name}", file=sys.stderr)
                results.append(summarise(scene, size, codec, run_child(path, args.repeat)))
    finally:
        if tmp is not None:
            tmp.cleanup()

    codec = results[0]["codec"] if results else "?"
    note = "" if codec == "h264" else " (mp4v: PyAV missing, keyframe every 12 frames)"
    print(f"clips: {codec}{note}, {args.fps} fps, keyframe every {args.gop:g} s")
    print(f"median of {args.repeat} runs; targets: 720p >= 10x, 1080p >= 5x, peak <= 1024 MB")
    head = (
        f"{'clip':16s} {'code':>10s} {'dur s':>6s} {'wall s':>7s} {'x RT':>6s} {'sample s':>9s} "
        f"{'analyse s':>9s} {'frames':>6s} {'base MB':>8s} {'peak MB':>8s}  target"
    )
    print(head)
    for r in results:
        ok = "ok" if r["meets_speed"] and r["meets_memory"] else "MISSED"
        print(
            f"{r['clip']:16s} {r['code'][-10:]:>10s} {r['duration_s']:6.1f} {r['wall_s']:7.2f} "
            f"{r['x_real_time']:6.1f} "
            f"{r['sampling_s'] or 0:9.2f} {r['analysis_s'] or 0:9.2f} {r['frames']:6d} "
            f"{r['base_mb']:8.0f} {r['peak_mb']:8.0f}  {ok}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items() if k != "child"},
                    "results": results,
                },
                indent=1,
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
