"""Perceptual hashes: PDQ (Meta's; :mod:`provenance.pdq`, bit-exact with the ``pdqhash``
binding) for images and video frames.

A PDQ hash is 256 bits, written as 64 hex digits, with a quality score (0-100; below
:data:`MIN_QUALITY` the image is too flat for the hash to mean much). Two hashes are compared by
Hamming distance. :data:`MATCH_THRESHOLD` and :data:`NEAR_THRESHOLD` were chosen with
``benchmarks/hash_eval.py`` on the project's own transformations of photographs and on pairs of
distinct photographs; ``docs/measurements/hashing.md`` has the numbers.

These are the primitives the known-media banks use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HASH_BITS = 256
#: Hamming distance at or below which two images are treated as the same picture. Measured on
#: 425 images: every JPEG 50-90, 0.5x and greyscale copy falls within it, over 99% of +20%
#: brightness, screenshot-like and 0.25x copies; none of 90,100 distinct pairs (closest: 38).
MATCH_THRESHOLD = 31
#: Up to this distance, "probably the same picture" with low confidence: 1 of the 90,100
#: distinct pairs fell within it. Crops, flips and rotations are beyond PDQ either way.
NEAR_THRESHOLD = 40
#: PDQ's own guidance: hashes of lower quality are unreliable.
MIN_QUALITY = 50


@dataclass(frozen=True)
class PdqHash:
    hex: str
    quality: int

    @property
    def reliable(self) -> bool:
        return self.quality >= MIN_QUALITY


@dataclass(frozen=True)
class FrameHash:
    time_s: float
    hash: PdqHash


#: Images longer than this are hashed from a copy reduced by the smallest whole factor that
#: brings them within it (area average). Up to it the hash is the reference's, bit for bit
#: (tests/test_pdq.py); beyond it, on photographs of 2-22 MP, the copy's hash stayed within the
#: 10 bits ThreatExchange allows between implementations of the full-size one (median 2 bits)
#: (docs/measurements/pdq-reference.md, ``benchmarks/pdq_reference.py``).
#: The full-size hash of a 12 MP photograph cost three times as much as the whole rest of the
#: stage.
MAX_SIDE = 2048


def pdq(rgb: np.ndarray) -> PdqHash:
    """The PDQ hash of an ``HxWx3`` uint8 RGB image."""
    import cv2

    from provenance.pdq import hash256

    height, width = rgb.shape[:2]
    if max(height, width) > MAX_SIDE:
        # A whole factor: an area average over whole blocks keeps the filter's structure (a
        # 2100 px image fitted to 2048 px moved 10 bits, halved 4).
        factor = -(-max(height, width) // MAX_SIDE)
        size = (max(1, round(width / factor)), max(1, round(height / factor)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    bits, quality = hash256(np.ascontiguousarray(rgb, dtype=np.uint8))
    return PdqHash(hex=bits_to_hex(bits), quality=int(quality))


def bits_to_hex(bits: np.ndarray | Iterable[int]) -> str:
    arr = np.asarray(list(bits) if not isinstance(bits, np.ndarray) else bits, dtype=np.uint8)
    if arr.size != HASH_BITS:
        raise ValueError(f"a PDQ hash has {HASH_BITS} bits, got {arr.size}")
    return np.packbits(arr).tobytes().hex()


def hex_to_int(value: str) -> int:
    """Parse a 64-hex-digit PDQ hash.

    Raises:
        ValueError: not 64 hexadecimal digits.
    """
    text = value.strip().lower()
    if len(text) != HASH_BITS // 4 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"not a PDQ hash (64 hex digits): {value[:80]!r}")
    return int(text, 16)


def distance(a: str, b: str) -> int:
    """Hamming distance between two PDQ hashes (0-256)."""
    return (hex_to_int(a) ^ hex_to_int(b)).bit_count()


def similarity(dist: int) -> float:
    """1.0 for identical hashes, 0.0 at the distance expected between unrelated images (128)."""
    return max(0.0, 1.0 - dist / (HASH_BITS / 2))


def video_frame_hashes(
    path: Path, *, every_s: float = 1.0, max_frames: int = 64
) -> tuple[FrameHash, ...]:
    """PDQ of frames sampled uniformly from a video (one per ``every_s`` seconds, bounded).

    Returns an empty tuple when the container cannot be decoded.
    """
    from provenance.media import sample_video_frames

    sampled = sample_video_frames(path, every_s=every_s, max_frames=max_frames)
    return tuple(FrameHash(time_s=t, hash=pdq(rgb)) for t, rgb in sampled.frames)
