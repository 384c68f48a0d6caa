"""Cost of the metadata formats added in issue 14: stealth LSB data and MP4/MOV boxes.

    .venv/bin/python benchmarks/bench_metadata_formats.py [--repeat 7]

Makes its own inputs in a temporary folder: a 12 MP (4000x3000) RGBA PNG without stealth data,
a 2 MP (1632x1224) PNG with A1111 parameters in its alpha channel's lowest bits (stealth_pngcomp,
as sd_webui_stealth_pnginfo writes them), and an MP4 whose 1 GB 'mdat' is a sparse hole before
its 'moov'. Prints the median of each measurement over ``--repeat`` runs. ``read_metadata`` is
timed as ``analyze`` calls it: on an image already decoded (decoding is the pipeline's own
``decode`` stage, shown for scale). The machine is shared and noisy: compare orders of magnitude.
"""

from __future__ import annotations

import argparse
import io
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provenance.metadata import read_metadata, read_video_metadata  # noqa: E402
from provenance.stealth import read_stealth, write_stealth  # noqa: E402

A1111 = (
    "a lighthouse on a cliff at dusk, oil painting\nNegative prompt: blurry, lowres\n"
    "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234567, Size: 1632x1224, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1"
)


def picture(width: int, height: int) -> Image.Image:
    """A smooth pattern with some texture (compresses like a photo-ish PNG, quickly made)."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 24, (height, width), dtype=np.uint8)
    rgb = np.stack(
        [
            (x * 255 // width) ^ noise,
            (y * 255 // height) + noise // 2,
            ((x + y) % 256) // 2 + noise,
        ],
        axis=-1,
    ).astype(np.uint8)
    return Image.fromarray(rgb)


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def decoded(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def sparse_mp4(folder: Path) -> Path:
    """ftyp, a 1 GB mdat (a hole: nothing written), then moov/udta/meta/ilst with ©too."""
    path = folder / "sparse.mp4"
    data = struct.pack(">I4sII", 28, b"data", 1, 0) + b"Lavf61.7.100"
    item = struct.pack(">I4s", 8 + len(data), b"\xa9too") + data
    ilst = struct.pack(">I4s", 8 + len(item), b"ilst") + item
    hdlr = struct.pack(">I4sI", 33, b"hdlr", 0) + b"\0\0\0\0mdirappl" + bytes(9)
    meta = struct.pack(">I4sI", 12 + len(hdlr) + len(ilst), b"meta", 0) + hdlr + ilst
    udta = struct.pack(">I4s", 8 + len(meta), b"udta") + meta
    moov = struct.pack(">I4s", 8 + len(udta), b"moov") + udta
    mdat_size = 1 << 30
    with path.open("wb") as fh:
        fh.write(struct.pack(">I4s", 16, b"ftyp") + b"isom\0\0\2\0")
        fh.write(struct.pack(">I4sQ", 1, b"mdat", mdat_size + 16))
        fh.seek(mdat_size, 1)
        fh.write(moov)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    repeat = args.repeat

    big = png_bytes(picture(4000, 3000).convert("RGBA"))
    small = png_bytes(write_stealth(picture(1632, 1224), A1111))
    big_im, small_im = decoded(big), decoded(small)
    assert read_stealth(big_im) is None
    found = read_metadata(small_im)
    assert found.generator == "automatic1111", found
    rows: list[tuple[str, str | float]] = [
        ("12 MP PNG without stealth data", f"{len(big) / 1e6:.1f} MB"),
        ("  decode (the pipeline's decode stage)", median_ms(lambda: decoded(big), 3)),
        ("  read_stealth", median_ms(lambda: read_stealth(big_im), repeat)),
        ("  read_metadata (all of it)", median_ms(lambda: read_metadata(big_im), repeat)),
        ("2 MP PNG with stealth_pngcomp", f"{len(small) / 1e6:.1f} MB"),
        ("  decode (the pipeline's decode stage)", median_ms(lambda: decoded(small), 3)),
        ("  read_stealth", median_ms(lambda: read_stealth(small_im), repeat)),
        ("  read_metadata (all of it)", median_ms(lambda: read_metadata(small_im), repeat)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        mp4 = sparse_mp4(Path(tmp))
        assert read_video_metadata(mp4).software == ("Lavf61.7.100",)
        sample = ROOT / "samples" / "signed_video.mp4"
        rows += [
            ("MP4/MOV container metadata", ""),
            ("  samples/signed_video.mp4", median_ms(lambda: read_video_metadata(sample), repeat)),
            (
                "  1 GB mdat before moov (sparse)",
                median_ms(lambda: read_video_metadata(mp4), repeat),
            ),
        ]
    for label, value in rows:
        shown = f"{value:9.2f} ms" if isinstance(value, float) else value
        print(f"{label:42s} {shown}")


if __name__ == "__main__":
    main()
