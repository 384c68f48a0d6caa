"""Peak memory of one analysis, for ordinary files and for files built to exhaust memory.

    .venv/bin/python benchmarks/bench_memory.py [--max-pixels N] [--json] [--only NAME]

Every case runs in a fresh Python process that loads the default configuration (detectors
included), warms up on a small image, then analyses the case once through
``service.pipeline.analyze``. Reported per case: the process's peak resident set (``VmHWM``,
what the operating system had to give it), the growth over the warmed-up process, the time
and the outcome (verdict or intake error). The files are made by this script in a temporary folder
and never kept:

* ordinary photographs at 2, 12 and 48 megapixels (JPEG), a 48 MP PNG;
* files just under the pixel limit: a noisy JPEG, a flat PNG (tiny on disk), a palette PNG,
  a 16-bit grey PNG, an RGBA PNG, and ``samples/unsigned.jpg`` with its SOF0 header patched to
  the limit (37 KB that decode to the limit); a flat HEIC at the (lower) HEIF limit;
* files over the limit: the same patched JPEG at 13000x13000, a HEIC whose ``ispe`` box claims
  60000x60000;
* a 10 s 1080p video.

The target (issue 11): at most 1 GiB for any accepted file.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provenance.defaults import DEFAULT_MAX_PIXELS  # noqa: E402
from provenance.media import HEIF_MAX_PIXELS  # noqa: E402

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from PIL import Image
from provenance.media import MediaError
from service.config import load_config
from service.memory import tune_malloc
from service.pipeline import analyze
overrides = {"max_pixels": int(sys.argv[3])}
tune_malloc()
options = load_config(env={}, overrides=overrides).analyze_options()
analyze(sys.argv[1] + "/samples/camera_capture.jpg", options)  # load models, warm caches
def rss():
    # VmHWM: this process's own high-water mark (ru_maxrss would carry the parent's over exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
base = rss()
start = time.perf_counter()
try:
    report = analyze(sys.argv[2], options)
    outcome = f"{report.verdict.label} ({report.verdict.confidence})"
except MediaError as exc:
    outcome = f"refused: {exc.code}"
seconds = time.perf_counter() - start
print(json.dumps({"base_mb": base, "peak_mb": rss(), "seconds": seconds, "outcome": outcome}))
"""


def _side(pixels: int, aspect: float = 1.0) -> tuple[int, int]:
    """(width, height) of about ``pixels`` pixels, not over it."""
    h = int(math.sqrt(pixels / aspect))
    w = int(pixels // h)
    return w, h


def _noise(w: int, h: int, seed: int = 0) -> Image.Image:
    """A photograph-like texture: smooth gradients plus sensor-like noise, built in strips."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (w, h))
    strip = 1024
    xs = np.linspace(0, 255, w, dtype=np.float32)
    for top in range(0, h, strip):
        rows = min(strip, h - top)
        base = np.broadcast_to(xs[None, :, None], (rows, w, 3))
        px = np.clip(base + rng.normal(0, 12, (rows, w, 3)), 0, 255).astype(np.uint8)
        im.paste(Image.fromarray(px), (0, top))
    return im


def _patched_sof(folder: Path, w: int, h: int, name: str) -> Path:
    data = bytearray((ROOT / "samples" / "unsigned.jpg").read_bytes())
    i = data.find(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", h, w)
    path = folder / name
    path.write_bytes(bytes(data))
    return path


def _heic(folder: Path, w: int, h: int) -> Path:
    import pillow_heif

    pillow_heif.register_heif_opener()
    path = folder / "flat.heic"
    Image.new("RGB", (w, h), (120, 130, 140)).save(path, format="HEIF", quality=30)
    return path


def _heic_bomb(folder: Path) -> Path:
    import pillow_heif

    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buf, format="HEIF", quality=50)
    data = bytearray(buf.getvalue())
    i = data.find(b"ispe")
    data[i + 8 : i + 16] = struct.pack(">II", 60000, 60000)
    path = folder / "heic_ispe_60000.heic"
    path.write_bytes(bytes(data))
    return path


def _video(folder: Path) -> Path:
    import cv2

    path = folder / "video_1080p_10s.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 25, (1920, 1080))
    frame = np.asarray(_noise(1920, 1080, 3))[..., ::-1]
    for i in range(250):
        writer.write(np.roll(frame, i * 4, axis=1))
    writer.release()
    return path


def cases(folder: Path, max_pixels: int) -> dict[str, Callable[[], Path]]:
    lim_w, lim_h = _side(max_pixels - 1_000_000, 4 / 3)

    def save(name: str, im: Image.Image, **kw: Any) -> Path:
        path = folder / name
        im.save(path, **kw)
        return path

    return {
        "jpeg_2mp": lambda: save("2mp.jpg", _noise(1920, 1080), quality=90),
        "jpeg_12mp": lambda: save("12mp.jpg", _noise(4000, 3000), quality=90),
        "jpeg_48mp": lambda: save("48mp.jpg", _noise(8000, 6000), quality=90),
        "png_48mp": lambda: save("48mp.png", _noise(8000, 6000), compress_level=1),
        "jpeg_at_limit": lambda: save("limit.jpg", _noise(lim_w, lim_h), quality=85),
        "png_flat_at_limit": lambda: save(
            "flat.png", Image.new("RGB", (lim_w, lim_h), (120, 130, 140))
        ),
        "png_palette_at_limit": lambda: save(
            "palette.png", Image.new("P", (lim_w, lim_h), 3), optimize=False
        ),
        "png_16bit_grey_at_limit": lambda: save(
            "grey16.png", Image.new("I;16", (lim_w, lim_h), 3000)
        ),
        "png_rgba_at_limit": lambda: save(
            "rgba.png", Image.new("RGBA", (lim_w, lim_h), (1, 2, 3, 128))
        ),
        "heic_flat_at_limit": lambda: _heic(folder, *_side(HEIF_MAX_PIXELS - 500_000, 4 / 3)),
        "jpeg_sof_patched_at_limit": lambda: _patched_sof(folder, lim_w, lim_h, "sof_limit.jpg"),
        "jpeg_sof_patched_13000": lambda: _patched_sof(folder, 13000, 13000, "sof_13000.jpg"),
        "heic_ispe_60000": lambda: _heic_bomb(folder),
        "video_1080p_10s": lambda: _video(folder),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    parser.add_argument("--only", action="append", help="run only these cases (repeatable)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    Image.MAX_IMAGE_PIXELS = None  # the files are ours; the limits under test are Shingan's
    with tempfile.TemporaryDirectory(prefix="shingan-mem-") as tmp:
        folder = Path(tmp)
        for name, make in cases(folder, args.max_pixels).items():
            if args.only and name not in args.only:
                continue
            path = make()
            with _opened(path) as im:
                size = f"{im.size[0]}x{im.size[1]}" if im is not None else "1920x1080"
            run = subprocess.run(
                [sys.executable, "-c", _CHILD, str(ROOT), str(path), str(args.max_pixels)],
                capture_output=True,
                text=True,
                check=False,
            )
            if run.returncode != 0:
                results[name] = {"error": run.stderr.strip().splitlines()[-1:]}
            else:
                results[name] = json.loads(run.stdout.strip().splitlines()[-1])
            results[name]["size"] = size
            results[name]["file_kb"] = round(path.stat().st_size / 1024)
            path.unlink()
            if not args.json:
                _print_row(name, results[name])
    if args.json:
        print(json.dumps({"max_pixels": args.max_pixels, "cases": results}, indent=2))


def _opened(path: Path) -> Any:
    if path.suffix == ".mp4":
        return _null()
    if path.suffix == ".heic":
        import pillow_heif

        pillow_heif.register_heif_opener()
    return Image.open(path)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _print_row(name: str, r: dict[str, Any]) -> None:
    if "error" in r:
        print(f"{name:28s} {r['size']:>12s} FAILED {r['error']}")
        return
    print(
        f"{name:28s} {r['size']:>12s} {r['file_kb']:>9d} KB  peak {r['peak_mb']:7.0f} MB  "
        f"(+{r['peak_mb'] - r['base_mb']:5.0f} over {r['base_mb']:4.0f})  "
        f"{r['seconds']:6.2f} s  {r['outcome']}",
        flush=True,
    )


if __name__ == "__main__":
    main()
