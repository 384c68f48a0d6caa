"""Multi-index PDQ lookup agrees with a full scan."""

from __future__ import annotations

import numpy as np
import pytest

from provenance.pdq_index import PdqIndex, _flips


def flip(raw: bytes, bits: int, rng: np.random.Generator) -> str:
    buf = bytearray(raw)
    for pos in rng.choice(256, size=bits, replace=False):
        buf[pos // 8] ^= 1 << (pos % 8)
    return bytes(buf).hex()


@pytest.mark.parametrize("radius", [0, 16, 31, 40])
def test_index_matches_full_scan(radius: int) -> None:
    rng = np.random.default_rng(radius)
    raw = rng.integers(0, 256, (5000, 32), dtype=np.uint8)
    index = PdqIndex(bytes(r).hex() for r in raw)
    for bits in (0, 1, 8, 16, 24, 31, 32, 40, 41, 60):
        target = int(rng.integers(0, len(raw)))
        query = flip(bytes(raw[target]), bits, rng)
        got = index.search(query, radius)
        assert got == index.brute_force(query, radius)
        assert ((target, bits) in got) == (bits <= radius)


def test_empty_index_and_masks() -> None:
    assert PdqIndex([]).search("0" * 64, 31) == []
    assert len(_flips(1)) == 17
    assert len(_flips(2)) == 1 + 16 + 120
