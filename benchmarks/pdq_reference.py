"""PDQ of Shingan against the hashes ThreatExchange publishes for its own test images.

    .venv/bin/python benchmarks/pdq_reference.py --threatexchange DIR [--photos DIR]
        [--out docs/measurements]

``DIR`` is a clone of facebook/ThreatExchange (BSD licence) or its bare git directory (as the
tool library's ``fetch`` leaves it); nothing of it is copied into this repository. The script
reads the hashes its implementations publish for the images of ``pdq/data``:

- Python (``pdq/python/pdqhashing/tests/pdq_test.py``, pure-Python PDQ reading with Pillow),
- Java (``pdq/java/src/test/java/hasher/pdqhashing/PDQHasherTest.java``, ImageIO),
- WebAssembly (``pdq/wasm/test/TestData/PDQMD5TestData.csv``, the C++ compiled with Emscripten),

and compares, per image, the hash Shingan reports (``provenance.hashing.pdq``: the reference
arithmetic, on a copy reduced by a whole factor for images longer than
:data:`provenance.hashing.MAX_SIDE`) and the reference
arithmetic at full size (``provenance.pdq.hash256``, bit-exact with the C++ ``pdqhash``
binding) with each published hash. The spread among the published hashes of one image is what
the reference implementations themselves differ by; ThreatExchange calls an implementation
correct when its hashes of quality 80 or more are within 10 bits of the C++ reference.

The large ``exif-rotn`` photographs (4032x3024) have no published hash; for them the reduced
copy is compared with the full-size reference arithmetic, as for every JPEG of at least 2 MP
under ``--photos`` (for example the project's git-ignored corpus, ``models/corpus/data``).
Writes ``pdq-reference.md`` and ``pdq-reference.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provenance.hashing import MAX_SIDE, bits_to_hex, distance, pdq  # noqa: E402
from provenance.pdq import hash256  # noqa: E402

HEX = re.compile(r"[0-9a-f]{64}")


class Source:
    """Files of a ThreatExchange checkout or bare git directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bare = (root / "HEAD").is_file() and (root / "objects").is_dir()

    def read(self, path: str) -> bytes:
        if self.bare:
            return subprocess.run(
                ["git", "--git-dir", str(self.root), "show", f"HEAD:{path}"],
                check=True,
                capture_output=True,
            ).stdout
        return (self.root / path).read_bytes()

    def commit(self) -> str:
        args = ["--git-dir", str(self.root)] if self.bare else ["-C", str(self.root)]
        out = subprocess.run(["git", *args, "rev-parse", "HEAD"], capture_output=True, text=True)
        return out.stdout.strip() or "unknown"


def _data_path(raw: str) -> str:
    """``pdq/data/...`` from a path as a test file writes it."""
    return "pdq/data/" + raw.split("data/", 1)[1]


def published(src: Source) -> dict[str, dict[str, str]]:
    """{image path: {implementation: hash}}."""
    out: dict[str, dict[str, str]] = {}
    py = src.read("pdq/python/pdqhashing/tests/pdq_test.py").decode()
    for path, value in re.findall(r'SAMPLE_MEDIA \+ "([^"]+)",\s*"([0-9a-f]{64})"', py):
        out.setdefault("pdq/data/" + path, {})["python"] = value
    java = src.read("pdq/java/src/test/java/hasher/pdqhashing/PDQHasherTest.java").decode()
    for path, value in re.findall(
        r'new File\("([^"]+)"\).*?assertEquals\([^,]+,\s*"([0-9a-f]{64})"', java, flags=re.S
    ):
        out.setdefault(_data_path(path), {})["java"] = value
    csv = src.read("pdq/wasm/test/TestData/PDQMD5TestData.csv").decode()
    for line in csv.splitlines()[1:]:
        path, _, value = line.partition(",")
        if "/data/" in path and HEX.fullmatch(value.strip()):
            out.setdefault(_data_path(path), {})["wasm"] = value.strip()
    # b.jpg is named in the tests but not in the repository: it is the bridge's original.
    if "pdq/data/misc-images/b.jpg" in out:
        out.setdefault("pdq/data/bridge-mods/aaa-orig.jpg", {}).update(
            {f"{k} (as b.jpg)": v for k, v in out.pop("pdq/data/misc-images/b.jpg").items()}
        )
    return out


def rgb_of(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def measure(src: Source) -> dict[str, Any]:
    rows = []
    for path, hashes in sorted(published(src).items()):
        try:
            rgb = rgb_of(src.read(path))
        except (subprocess.CalledProcessError, OSError):
            continue  # named by a test, absent from the repository
        bits, quality = hash256(rgb)
        full = bits_to_hex(bits)
        ours = pdq(rgb).hex
        spread = max(
            (distance(a, b) for a, b in itertools.combinations([full, *hashes.values()], 2)),
            default=0,
        )
        rows.append(
            {
                "image": path,
                "size": f"{rgb.shape[1]}x{rgb.shape[0]}",
                "quality": int(quality),
                "reduced": max(rgb.shape[:2]) > MAX_SIDE,
                "spread_among_references": spread,
                "shingan_to_full_size": distance(ours, full),
                "shingan_to": {k: distance(ours, v) for k, v in hashes.items()},
                "full_size_to": {k: distance(full, v) for k, v in hashes.items()},
            }
        )
    for n in (1, 3, 6, 8):
        path = f"pdq/data/reg-test-input/exif-rotn/exif-rotn-{n}.jpg"
        try:
            rgb = rgb_of(src.read(path))
        except (subprocess.CalledProcessError, OSError):
            continue
        bits, quality = hash256(rgb)
        rows.append(
            {
                "image": path,
                "size": f"{rgb.shape[1]}x{rgb.shape[0]}",
                "quality": int(quality),
                "reduced": True,
                "spread_among_references": None,
                "shingan_to_full_size": distance(pdq(rgb).hex, bits_to_hex(bits)),
                "shingan_to": {},
                "full_size_to": {},
            }
        )
    return {"threatexchange_commit": src.commit(), "max_side": MAX_SIDE, "images": rows}


def photos(folder: Path, limit: int) -> dict[str, Any]:
    """Reduced copy against full-size reference arithmetic on JPEG photographs of >= 2 MP."""
    paths = []
    for path in sorted(folder.rglob("*.jpg")):
        with Image.open(path) as im:
            if im.width * im.height >= 2_000_000:
                paths.append(path)
    step = max(1, len(paths) // limit)
    dists, sizes = [], []
    for path in paths[::step][:limit]:
        rgb = rgb_of(path.read_bytes())
        bits, quality = hash256(rgb)
        if quality >= 80:
            dists.append(distance(pdq(rgb).hex, bits_to_hex(bits)))
            sizes.append(rgb.shape[0] * rgb.shape[1] / 1e6)
    arr = np.asarray(dists)
    return {
        "images": len(dists),
        "megapixels": [round(min(sizes), 1), round(max(sizes), 1)] if sizes else None,
        "median": float(np.median(arr)) if dists else None,
        "p90": float(np.percentile(arr, 90)) if dists else None,
        "max": int(arr.max()) if dists else None,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# PDQ on a reduced copy against the published reference hashes",
        "",
        "Produced by `benchmarks/pdq_reference.py` (do not edit by hand). ThreatExchange commit "
        f"`{result['threatexchange_commit']}`; Shingan hashes images longer than "
        f"{result['max_side']} px from a copy reduced by a whole factor to at most that. "
        "Distances in bits of 256; the match threshold is 31.",
        "",
        "*spread*: the largest distance among the published hashes of the image and the "
        "full-size reference arithmetic (what the reference implementations differ by). "
        "*to full size*: Shingan's hash against the reference arithmetic on the whole image.",
        "",
        "| image | size | quality | spread | to full size | to published |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["images"]:
        spread = row["spread_among_references"]
        pub = ", ".join(f"{k} {v}" for k, v in row["shingan_to"].items()) or "none published"
        lines.append(
            f"| {row['image'][9:]} | {row['size']} | {row['quality']} | "
            f"{'-' if spread is None else spread} | {row['shingan_to_full_size']} | {pub} |"
        )
    within = all(
        max(r["shingan_to"].values(), default=0) <= (r["spread_among_references"] or 0)
        for r in result["images"]
        if r["spread_among_references"] is not None
    )
    lines += ["", f"Every published image within its spread: {'yes' if within else 'NO'}."]
    if result.get("photos"):
        p = result["photos"]
        lines += [
            "",
            f"Photographs (`--photos`, JPEG of quality 80 or more, {p['megapixels'][0]}-"
            f"{p['megapixels'][1]} MP, {p['images']} images): reduced copy to full size "
            f"median {p['median']:g}, 90th percentile {p['p90']:g}, max {p['max']} bits.",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threatexchange", type=Path, required=True)
    parser.add_argument("--photos", type=Path, help="a folder of large JPEG photographs")
    parser.add_argument("--limit", type=int, default=80, help="photographs to hash at most")
    parser.add_argument("--out", type=Path, help="write pdq-reference.md and .json here")
    args = parser.parse_args()
    result = measure(Source(args.threatexchange))
    if args.photos:
        result["photos"] = photos(args.photos, args.limit)
    print(f"ThreatExchange {result['threatexchange_commit']}; reduced copies over {MAX_SIDE} px")
    print(f"{'image':52s} {'size':>9s} {'q':>3s} {'spread':>6s} {'full':>4s}  to published")
    for row in result["images"]:
        spread = row["spread_among_references"]
        published_d = ", ".join(f"{k} {v}" for k, v in row["shingan_to"].items())
        print(
            f"{row['image'][9:]:52s} {row['size']:>9s} {row['quality']:>3d} "
            f"{'-' if spread is None else spread:>6} {row['shingan_to_full_size']:>4d}  "
            f"{published_d}"
        )
    if result.get("photos"):
        print("photographs:", result["photos"])
    if args.out:
        (args.out / "pdq-reference.json").write_text(json.dumps(result, indent=1) + "\n")
        (args.out / "pdq-reference.md").write_text(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
