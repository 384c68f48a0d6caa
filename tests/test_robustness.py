"""Garbage, truncated and adversarial input through the whole pipeline: a report or a typed
refusal, never another exception and never a hang."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from provenance.media import MediaError
from service.pipeline import AnalyzeOptions, analyze
from tests.conftest import C2PA_FIXTURES, SAMPLES, SHARED_REASON

MAGICS = [
    b"\xff\xd8\xff\xe1",
    b"\x89PNG\r\n\x1a\n",
    b"GIF89a",
    b"RIFF\x10\x00\x00\x00WEBP",
    b"RIFF\x10\x00\x00\x00WAVE",
    b"II*\x00",
    b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00isom",
    b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1",
    b"\x1a\x45\xdf\xa3",
    b"ID3\x04\x00",
    b"%PDF-1.4\n",
    b"<svg xmlns='http://www.w3.org/2000/svg'>",
]

SLOW_S = 20  # far above any real case; only a hang or runaway parse gets near it


def _run(path: Path) -> str:
    start = time.monotonic()
    try:
        analyze(path, AnalyzeOptions())
        outcome = "report"
    except MediaError as exc:
        outcome = exc.code
    assert time.monotonic() - start < SLOW_S, f"{path.name} took too long"
    return outcome


def test_random_bytes_behind_every_magic(tmp_path: Path) -> None:
    rng = random.Random(1234)
    outcomes = set()
    for i, magic in enumerate(MAGICS):
        for size in (0, 16, 300, 5000):
            f = tmp_path / f"g{i}_{size}.bin"
            f.write_bytes(magic + rng.randbytes(size))
            outcomes.add(_run(f))
    assert outcomes <= {"report", "corrupt_media", "unsupported_media_type", "too_many_pixels"}


def test_truncated_samples(tmp_path: Path) -> None:
    for sample in sorted(SAMPLES.glob("*.*")):
        if sample.suffix not in (".jpg", ".png", ".mp4"):
            continue
        data = sample.read_bytes()
        for frac in (0.01, 0.1, 0.5, 0.9):
            f = tmp_path / f"{sample.stem}_{frac}{sample.suffix}"
            f.write_bytes(data[: max(1, int(len(data) * frac))])
            _run(f)


@pytest.mark.shared
@pytest.mark.skipif(not C2PA_FIXTURES.is_dir(), reason=SHARED_REASON)
def test_adversarial_fixtures_give_error_or_absent() -> None:
    states = {}
    for f in sorted((C2PA_FIXTURES / "adversarial").iterdir()):
        report = analyze(f, AnalyzeOptions())
        states[f.name] = report.to_dict()["provenance"]["c2pa"]["state"]
    assert states == {
        "id3v23_compression_underflow.mp3": "absent",
        "nested_moov_1000.mp4": "error",
    }
