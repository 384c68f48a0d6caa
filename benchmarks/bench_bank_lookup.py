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
    parser.add_argument(
        "--store",
        action="store_true",
        help="also time banks kept in a SQLite store (LiveBanks): insert, first lookup, delta",
    )
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
    if args.store:
        bench_store(hexes, [q for q, _ in queries])
    return 0


def bench_store(hexes: list[str], queries: list[str]) -> None:
    """The same entries in a database bank, looked up as the service does (service.banks)."""
    import tempfile

    from service.banks import BankEntry, BankSet, LiveBanks
    from service.store import Store, default_url

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(default_url(Path(tmp)))
        store.banks.create_bank("bench", "manipulated")
        start = time.perf_counter()
        store.banks.add_bank_entries(
            "bench",
            (BankEntry("bench", f"e{i}", "manipulated", h) for i, h in enumerate(hexes)),
        )
        insert = time.perf_counter() - start
        live = LiveBanks(BankSet(), store.banks)
        start = time.perf_counter()
        live.lookup(queries[0], 31)
        first = time.perf_counter() - start
        times = []
        for q in queries:
            t = time.perf_counter()
            live.lookup(q, 31)
            times.append((time.perf_counter() - t) * 1000)
        store.banks.add_bank_entries(
            "bench",
            (BankEntry("bench", f"n{i}", "manipulated", h) for i, h in enumerate(hexes[:1000])),
        )
        start = time.perf_counter()
        live.lookup(queries[0], 31)
        delta = time.perf_counter() - start
        print(
            f"store: inserting {len(hexes)} entries {insert:.1f} s; first lookup (load and "
            f"index) {first:.1f} s; then median {statistics.median(times):.2f} ms per lookup "
            f"at radius 31 (revision check included); first lookup after 1,000 more entries "
            f"{delta * 1000:.0f} ms"
        )
        store.close()


if __name__ == "__main__":
    sys.exit(main())
