"""Aligned fakes (Rajan et al., ICLR 2025, "Aligned datasets improve detection of latent
diffusion-generated images"): each real TRAINING photograph passed through a latent autoencoder's
encoder and decoder gives an image with the same content and the decoder's traces, so the probe
is pushed to learn those traces rather than what generated images tend to show.

    .venv-models/bin/python models/ai_clip/aligned.py --weights DIR [--corpus models/corpus/data]

The autoencoder is madebyollin/taesd's tiny FLUX.2 autoencoder (MIT; ``taef2_encoder.pth`` and
``taef2_decoder.pth`` at commit 5cccb12dc72074a4be35680c3b108548a7c69978, sha256 10a4e102… and
0a44a31e…, recorded in ``models/corpus/MODELS-USED.tsv``). The network below is written
here to load those weights. Photos are reduced to ``--side`` px (256) on the shorter side
first: at 512 px the autoencoder took several seconds an image on two cores (the first run,
at that size, was stopped). Output: ``<corpus>/train/ai/taef2-aligned/*.png``, added to
``index.tsv`` with family ``taef2-aligned`` (train split only: the aligned copies of training
photos never leave training). ``train.py`` decides on validation data, with a margin, whether they
help.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.corpus.build import read_index  # noqa: E402

WEIGHTS = {
    "taef2_encoder.pth": "10a4e1021e89d7551eaf161352da8dbd0b1aa83872ae28b150c1df1ce2f147b6",
    "taef2_decoder.pth": "0a44a31e1ae59eb9dbf9359d24942fd3ef5928162c1800d97a28c61d51be0ab5",
}


def _conv(n_in: int, n_out: int, **kw: object) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kw)  # type: ignore[arg-type]


class _Clamp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class _Block(nn.Module):
    def __init__(self, n: int, gn: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(n, n), nn.ReLU(), _conv(n, n), nn.ReLU(), _conv(n, n))
        self.skip = nn.Identity()
        self.fuse = nn.ReLU()
        self.pool: nn.Module | None = None
        if gn:
            self.pool = nn.Sequential(
                nn.Conv2d(n, n * 4, 1, bias=False),
                nn.GroupNorm(4, n * 4),
                nn.ReLU(inplace=True),
                nn.Conv2d(n * 4, n, 1, bias=False),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


def encoder(latent: int = 32) -> nn.Sequential:
    down = {"bias": False, "stride": 2}
    return nn.Sequential(
        _conv(3, 64), _Block(64),
        _conv(64, 64, **down), _Block(64), _Block(64), _Block(64),
        _conv(64, 64, **down), _Block(64), _Block(64), _Block(64),
        _conv(64, 64, **down), _Block(64, True), _Block(64, True), _Block(64, True),
        _conv(64, latent),
    )  # fmt: skip


def decoder(latent: int = 32) -> nn.Sequential:
    up = nn.Upsample
    return nn.Sequential(
        _Clamp(), _conv(latent, 64), nn.ReLU(),
        _Block(64, True), _Block(64, True), _Block(64, True), up(scale_factor=2),
        _conv(64, 64, bias=False),
        _Block(64), _Block(64), _Block(64), up(scale_factor=2), _conv(64, 64, bias=False),
        _Block(64), _Block(64), _Block(64), up(scale_factor=2), _conv(64, 64, bias=False),
        _Block(64), _conv(64, 3),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, required=True, help="folder with the .pth files")
    parser.add_argument("--corpus", type=Path, default=ROOT / "models/corpus/data")
    parser.add_argument("--side", type=int, default=256, help="shorter side first reduced to this")
    parser.add_argument("--limit", type=int, default=400, help="this many photos (by file hash)")
    args = parser.parse_args()
    for name, digest in WEIGHTS.items():
        actual = hashlib.sha256((args.weights / name).read_bytes()).hexdigest()
        if actual != digest:
            sys.exit(f"aligned: {name} has sha256 {actual[:12]}…, expected {digest[:12]}…")
    torch.set_num_threads(2)
    enc, dec = encoder(), decoder()
    enc.load_state_dict(torch.load(args.weights / "taef2_encoder.pth", weights_only=True))
    dec.load_state_dict(torch.load(args.weights / "taef2_decoder.pth", weights_only=True))
    enc.eval()
    dec.eval()
    index = args.corpus / "index.tsv"
    lines = index.read_text(encoding="utf-8").splitlines()
    items = read_index(args.corpus)
    reals = [i for i in items if i["split"] == "train" and i["label"] == "real"]
    reals.sort(key=lambda i: hashlib.sha256(i["file"].encode()).hexdigest())
    reals = reals[: args.limit]
    out_dir = args.corpus / "train" / "ai" / "taef2-aligned"
    out_dir.mkdir(parents=True, exist_ok=True)
    added = [line for line in lines if "\ttaef2-aligned\t" not in line]
    for n, item in enumerate(reals):
        image = ImageOps.exif_transpose(Image.open(args.corpus / item["file"])).convert("RGB")
        scale = args.side / min(image.size)
        if scale < 1:
            image = image.resize(
                (round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS
            )
        w, h = image.width // 8 * 8, image.height // 8 * 8
        pixels = np.array(image.crop((0, 0, w, h)))
        x = torch.from_numpy(pixels).permute(2, 0, 1)[None] / 255.0
        with torch.no_grad():
            y = dec(enc(x)).clamp(0, 1)
        rgb = (y[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        path = out_dir / f"{Path(item['file']).stem}.png"
        Image.fromarray(rgb).save(path)
        added.append(
            f"{path.relative_to(args.corpus)}\t{item['source_sha256']}\t1\tai\ttaef2-aligned\t"
            f"train\t{w}\t{h}\t{item['source']} via taef2\tMIT (taesd) + {item['licence']}"
        )
        if n % 100 == 0:
            print(f"{n}/{len(reals)}", flush=True)
    index.write_text("\n".join(added) + "\n", encoding="utf-8")
    print(f"{len(reals)} aligned fakes in {out_dir}")


if __name__ == "__main__":
    main()
