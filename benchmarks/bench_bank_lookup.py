"""Known-media lookup at scale: PdqIndex (multi-index hashing) against a full scan.

    .venv/bin/python benchmarks/bench_bank_lookup.py [--entries 1000000] [--queries 200]

Entries are random 256-bit hashes (uniform, the easy case: real PDQ hashes cluster, which makes
posting lists longer) with planted near-copies of the queries at distances 0-40. Reports build
time, the median and 95th-percentile query time at radius 31 (match) and 40 (near), and checks
every answer against the full scan.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provenance.pdq_index import PdqIndex  # noqa: E402


def flip(raw: bytes, bits: int, rng: np.random.Generator) -> bytes:
    buf = bytearray(raw)
    for pos in rng.choice(256, size=bits, replace=False):
        buf[pos // 8] ^= 1 << (pos % 8)
    return bytes(buf)


def main() -> int:
    parser = argparse.ArgumentParser(description="PDQ bank lookup at scale")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, (args.entries, 32), dtype=np.uint8)
    queries = []
    for _ in range(args.queries):
        target = int(rng.integers(0, args.entries))
        queries.append((flip(bytes(raw[target]), int(rng.integers(0, 41)), rng).hex(), target))
    hexes = [bytes(r).hex() for r in raw]
    start = time.perf_counter()
    index = PdqIndex(hexes)
    build = time.perf_counter() - start
    for radius in (31, 40):
        times, scans, wrong = [], [], 0
        for q, _ in queries:
            t = time.perf_counter()
            got = index.search(q, radius)
            times.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            want = index.brute_force(q, radius)
            scans.append((time.perf_counter() - t) * 1000)
            wrong += got != want
        print(
            f"{args.entries} entries, radius {radius}: index median "
            f"{statistics.median(times):.2f} ms, p95 {np.percentile(times, 95):.2f} ms; "
            f"full scan median {statistics.median(scans):.1f} ms; "
            f"answers differing from the scan: {wrong} of {len(queries)}"
        )
    print(f"build: {build:.1f} s for {args.entries} entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
