"""provenance/pdq.py against the pdqhash binding of Meta's C++ (the reference it ports)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image

from provenance.pdq import hash256, luma, window_size
from samples.make_samples import draw_scene
from tests.conftest import FIXTURES, SAMPLES

pdqhash = pytest.importorskip("pdqhash")


def _images() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = [(p.name, np.asarray(Image.open(p).convert("RGB"))) for p in sorted(SAMPLES.glob("*.*g"))]
    for h, w in [(5, 5), (7, 100), (64, 64), (65, 63), (100, 37), (129, 257), (1080, 1920)]:
        out.append((f"noise {h}x{w}", rng.integers(0, 256, (h, w, 3), dtype=np.uint8)))
    for seed, (w, h) in enumerate([(640, 480), (333, 777), (2000, 1500)]):
        out.append((f"scene {w}x{h}", draw_scene(w, h, seed=seed)))
    flat = np.full((300, 400, 3), 128, dtype=np.uint8)
    out.append(("flat", flat))  # every coefficient ties with the median
    train = FIXTURES / "train"
    if train.is_dir():  # third-party photographs and AI images, read in place
        for path in sorted(train.glob("*/*"))[:60]:
            try:
                with Image.open(path) as im:
                    out.append((path.name, np.asarray(im.convert("RGB"))))
            except OSError:
                continue
    return out


def test_bit_exact_with_the_reference_binding() -> None:
    for name, rgb in _images():
        ref_bits, ref_quality = pdqhash.compute(np.ascontiguousarray(rgb))
        bits, quality = hash256(rgb)
        assert np.array_equal(np.asarray(ref_bits, dtype=np.uint8), bits), name
        assert quality == ref_quality, name


def test_luma_equals_the_double_expression_for_every_colour() -> None:
    """The float32 integer form in ``luma`` against the reference's double arithmetic."""
    levels = np.arange(256, dtype=np.float64)
    g, b = np.meshgrid(levels, levels, indexing="ij")
    for red in range(256):
        rgb = np.stack([np.full_like(g, red), g, b], axis=-1).astype(np.uint8)
        expected = (0.299 * red + 0.587 * g + 0.114 * b).astype(np.float32)
        assert np.array_equal(luma(rgb), expected), red


def test_window_sizes_match_the_reference() -> None:
    assert [window_size(n) for n in (64, 128, 129, 1024, 4000)] == [1, 1, 2, 8, 32]


def test_large_images_leave_other_threads_running() -> None:
    """The reason for the port: the binding holds the interpreter lock for its whole run."""
    rgb = np.random.default_rng(1).integers(0, 256, (2400, 3200, 3), dtype=np.uint8)
    gaps: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        hash256(rgb)
    finally:
        stop.set()
        thread.join()
    assert max(gaps) < 0.1  # the binding: about 230 ms at this size


def test_a_busy_helper_thread_neither_blocks_nor_changes_the_hash() -> None:
    """The second half of each pass goes to a helper thread when it is free; when it is busy
    (another image), the caller does that half itself; turned off, the caller does all."""
    from provenance import pdq

    rgb = np.random.default_rng(3).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    expected = pdq.hash256(rgb)
    assert pdq._helper is not None  # the free helper took its halves
    gate = threading.Event()
    blocker = pdq._helper.submit(gate.wait)
    try:
        started = time.perf_counter()
        busy = pdq.hash256(rgb)
        assert time.perf_counter() - started < 5
        assert not blocker.done()  # done without the helper
    finally:
        gate.set()
    pdq.use_helper_thread(False)
    try:
        alone = pdq.hash256(rgb)
    finally:
        pdq.use_helper_thread(True)
    for got in (busy, alone):
        assert np.array_equal(got[0], expected[0])
        assert got[1] == expected[1]
