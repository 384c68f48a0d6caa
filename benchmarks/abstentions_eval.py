"""How often image abstentions fire on photographs and AI images (flatness, JPEG quality).

    .venv/bin/python benchmarks/abstentions_eval.py [--train ../shared/fixtures/train]

Reports, per class of the training pool, how many images count as mostly flat at the chosen
``FLAT_SHARE`` (and at a looser 0.55 for comparison), and the distribution of estimated JPEG
qualities with the share below ``HEAVY_JPEG_QUALITY``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.abstentions import FLAT_SHARE, HEAVY_JPEG_QUALITY, flat_share, jpeg_quality  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description="Abstention rates on the training pool")
    parser.add_argument("--train", type=Path, default=ROOT.parent / "shared" / "fixtures" / "train")
    args = parser.parse_args()
    for cls in ("real", "ai"):
        folder = args.train / cls
        if not folder.is_dir():
            print(f"no {folder}", file=sys.stderr)
            return 2
        shares, qualities = [], []
        for path in sorted(folder.iterdir()):
            with Image.open(path) as im:
                shares.append(flat_share(np.asarray(im.convert("RGB"))))
                if im.format == "JPEG":
                    q = jpeg_quality(im)
                    if q is not None:
                        qualities.append(q)
        flat = sum(s > FLAT_SHARE for s in shares)
        loose = sum(s > 0.55 for s in shares)
        heavy = sum(q < HEAVY_JPEG_QUALITY for q in qualities)
        print(
            f"{cls}: {len(shares)} images; illustration_like at {FLAT_SHARE}: {flat} "
            f"(at 0.55: {loose}); JPEG quality median "
            f"{statistics.median(qualities) if qualities else '-'}, "
            f"below {HEAVY_JPEG_QUALITY}: {heavy} of {len(qualities)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
