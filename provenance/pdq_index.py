"""Multi-index hashing over PDQ hashes: find every stored hash within a Hamming radius, fast.

A 256-bit hash is cut into 16 chunks of 16 bits. If two hashes differ in at most ``r`` bits, by
the pigeonhole principle at least one chunk differs in at most ``r // 16`` bits; so a query only
looks, chunk by chunk, at the stored hashes whose chunk is within that small radius of the
query's chunk (found by binary search in one sorted column per chunk), then checks the exact
distance of those few candidates. ``benchmarks/bench_bank_lookup.py`` measures it at a million
entries. This is the index the known-media banks use; it holds ids, not labels.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations

import numpy as np

from provenance.hashing import hex_to_int

CHUNKS = 16
CHUNK_BITS = 16


def _to_words(hex_hashes: Iterable[str]) -> np.ndarray:
    """Hex hashes -> (N, 16) uint16 chunks, most significant first."""
    raw = b"".join(hex_to_int(h).to_bytes(32, "big") for h in hex_hashes)
    return np.frombuffer(raw, dtype=">u2").reshape(-1, CHUNKS).astype(np.uint16)


def _flips(radius: int) -> list[int]:
    """Every 16-bit mask with at most ``radius`` bits set."""
    masks = [0]
    for k in range(1, radius + 1):
        for bits in combinations(range(CHUNK_BITS), k):
            masks.append(sum(1 << b for b in bits))
    return masks


class PdqIndex:
    """An immutable index of PDQ hashes; build once, query from any thread."""

    def __init__(self, hex_hashes: Iterable[str]) -> None:
        self.words = _to_words(hex_hashes)
        self.size = self.words.shape[0]
        self._order = np.argsort(self.words, axis=0, kind="stable")
        self._sorted = np.take_along_axis(self.words, self._order, axis=0)

    def search(self, hex_hash: str, radius: int) -> list[tuple[int, int]]:
        """(position, distance) of every stored hash within ``radius`` bits, nearest first."""
        if self.size == 0:
            return []
        q = _to_words([hex_hash])[0]
        masks = np.asarray(_flips(min(radius // CHUNKS, CHUNK_BITS)), dtype=np.uint16)
        found: list[np.ndarray] = []
        for c in range(CHUNKS):
            values = np.bitwise_xor(masks, q[c])
            column = self._sorted[:, c]
            lo = np.searchsorted(column, values, side="left")
            hi = np.searchsorted(column, values, side="right")
            for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
                if b > a:
                    found.append(self._order[a:b, c])
        if not found:
            return []
        candidates = np.unique(np.concatenate(found))
        diff = np.bitwise_xor(self.words[candidates], q)
        distance = np.bitwise_count(diff).sum(axis=1)
        keep = distance <= radius
        pairs = sorted(zip(distance[keep].tolist(), candidates[keep].tolist(), strict=True))
        return [(int(pos), int(dist)) for dist, pos in pairs]

    def brute_force(self, hex_hash: str, radius: int) -> list[tuple[int, int]]:
        """The same answer by scanning everything (for tests and the benchmark)."""
        q = _to_words([hex_hash])[0]
        distance = np.bitwise_count(np.bitwise_xor(self.words, q)).sum(axis=1)
        hits = np.flatnonzero(distance <= radius)
        return sorted(((int(p), int(distance[p])) for p in hits), key=lambda x: (x[1], x[0]))
