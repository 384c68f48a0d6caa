"""How long `shingan verify` takes per file, against the bare c2pa-python Reader.

    .venv/bin/python benchmarks/bench_verify.py [--repeat 21] [--cli-repeat 5] [--json]

Files: the small signed sample (samples/camera_capture.jpg) and a large signed 24-megapixel
JPEG made on the fly with the project's test CA (written to a temporary folder, never
committed). Where ../shared is present, c2pa-rs's 2.8 MB `verify.jpeg` is measured too.

Three timings per file, each the median of repeated runs:

* ``reader``   bare c2pa-python: open, ``Reader`` with a reused Context, ``json()`` and the
               validation state; the floor any C2PA checker pays;
* ``c2pa stage`` the C2PA stage inside Shingan's pipeline (its ``timings_ms["c2pa"]``): the
               same Reader plus signer details, thumbnails off;
* ``analyze``  Shingan's whole in-process pipeline (``service.pipeline.analyze``): intake
               (sniff, sha256, header), C2PA, pixel decode, metadata, watermarks, PDQ, verdict;
* ``cli``      the ``shingan verify --json FILE`` command end to end, including interpreter
               start-up (what a script calling the CLI per file pays).

The machine is shared and noisy, so the ratio analyze/reader is the number to compare.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import c2pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provenance.trust import build_trust  # noqa: E402
from samples.make_samples import IPTC, draw_scene, encode, manifest, sign  # noqa: E402
from service.pipeline import AnalyzeOptions, analyze  # noqa: E402


def median_ms(fn: Callable[[], Any], repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def make_large_jpeg(folder: Path) -> Path:
    """A signed 6000x4000 JPEG, about the size of a modern camera's output."""
    import numpy as np

    tile = draw_scene(1500, 1000, seed=21)
    big = np.tile(tile, (4, 4, 1))
    rng = np.random.default_rng(0)
    big = np.clip(big.astype(np.int16) + rng.integers(-6, 7, big.shape), 0, 255).astype(np.uint8)
    raw = encode(big, "JPEG", quality=92)
    signed = sign(
        raw,
        "image/jpeg",
        manifest(
            "large.jpg",
            [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"}],
            "image/jpeg",
        ),
        "signer-es256",
    )
    path = folder / "large_24mp.jpg"
    path.write_bytes(signed)
    return path


def bare_reader(path: Path, ctx: Any) -> Callable[[], None]:
    def run() -> None:
        with path.open("rb") as fh, c2pa.Reader("image/jpeg", fh, None, ctx) as reader:
            reader.json()
            reader.get_validation_state()

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark shingan verify against c2pa-python")
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--cli-repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    args = parser.parse_args()

    trust = build_trust(anchors=[ROOT / "samples" / "ca" / "root.pem"])
    ctx = c2pa.Context.from_dict(trust.settings())
    options = AnalyzeOptions(trust=trust)
    shingan = Path(sys.executable).with_name("shingan")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        files = [ROOT / "samples" / "camera_capture.jpg", make_large_jpeg(Path(tmp))]
        shared = ROOT.parent / "shared" / "fixtures" / "c2pa" / "rs" / "verify.jpeg"
        if shared.is_file():
            files.append(shared)
        for path in files:
            reader_ms = median_ms(bare_reader(path, ctx), args.repeat)
            analyze_ms = median_ms(lambda p=path: analyze(p, options), args.repeat)  # type: ignore[misc]
            c2pa_stage = statistics.median(
                analyze(path, options).timings_ms["c2pa"] for _ in range(args.repeat)
            )
            cli_ms = None
            if shingan.exists():
                cmd = [
                    str(shingan),
                    "verify",
                    "--json",
                    "--trust-anchors",
                    str(ROOT / "samples" / "ca" / "root.pem"),
                    str(path),
                ]
                cli_ms = median_ms(
                    lambda c=cmd: subprocess.run(c, check=True, capture_output=True),  # type: ignore[misc]
                    args.cli_repeat,
                    warmup=1,
                )
            results.append(
                {
                    "file": path.name,
                    "bytes": path.stat().st_size,
                    "reader_ms": round(reader_ms, 2),
                    "analyze_ms": round(analyze_ms, 2),
                    "analyze_over_reader": round(analyze_ms / reader_ms, 2),
                    "c2pa_stage_ms": round(c2pa_stage, 2),
                    "cli_ms": round(cli_ms, 1) if cli_ms is not None else None,
                }
            )
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    buf = io.StringIO()
    buf.write(
        f"{'file':22s} {'MB':>6s} {'reader ms':>10s} {'c2pa stage':>11s} {'analyze ms':>11s} "
        f"{'ratio':>6s} {'cli ms':>8s}\n"
    )
    for r in results:
        cli = f"{r['cli_ms']:8.1f}" if r["cli_ms"] is not None else f"{'n/a':>8s}"
        buf.write(
            f"{r['file']:22s} {r['bytes'] / 1e6:6.2f} {r['reader_ms']:10.2f} "
            f"{r['c2pa_stage_ms']:11.2f} {r['analyze_ms']:11.2f} {r['analyze_over_reader']:6.2f} "
            f"{cli}\n"
        )
    buf.write(f"(medians of {args.repeat} in-process runs and {args.cli_repeat} CLI runs)\n")
    print(buf.getvalue(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
