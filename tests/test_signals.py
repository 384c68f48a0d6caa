"""Signals as plugins: the registry, the rule table, and a new signal end to end."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from examples.custom_signal.trailing_data import TrailingData, trailing_bytes
from service import signals
from service.messages import M
from service.pipeline import analyze
from service.rules import RULES, Rule, UnlistedClaim, claim
from service.signals import DuplicateSignal
from tests.conftest import sample


@pytest.fixture
def trailing(monkeypatch: pytest.MonkeyPatch) -> Iterator[TrailingData]:
    """The example signal, registered, with its claim named in rule 5's row (the two edits a
    new signal makes besides its module and messages)."""
    row = RULES[Rule.GENERATOR_METADATA]
    monkeypatch.setitem(
        RULES, Rule.GENERATOR_METADATA, replace(row, claims=(*row.claims, "trailing_data.*"))
    )
    sig = TrailingData()
    signals.register(sig)  # type: ignore[arg-type]
    try:
        yield sig
    finally:
        signals.unregister(sig.name)


def test_built_in_signals_run_in_order_file_pixels_hashes() -> None:
    names = [s.name for s in signals.signals()]
    assert names == ["file", "c2pa", "metadata", "watermark", "detector", "known_media"]
    assert [s.name for s in signals.signals("hashes")] == ["known_media"]


def test_a_claim_its_rule_row_does_not_name_is_refused() -> None:
    with pytest.raises(UnlistedClaim, match="rule 3"):
        claim("c2pa", "c2pa.trusted", Rule.WATERMARK, None, "low", False, M("c2pa.absent"))
    assert RULES[Rule.WATERMARK].names("watermark.sdxl")
    assert not RULES[Rule.WATERMARK].names("metadata.generator")


def test_every_rule_has_a_row_naming_claims() -> None:
    assert list(RULES) == list(Rule)
    assert all(row.claims and row.description for row in RULES.values())


def test_a_second_signal_of_one_name_is_refused() -> None:
    with pytest.raises(DuplicateSignal):
        signals.register(signals.signal("c2pa"))


def test_a_new_signal_reaches_the_verdict_through_analyze(
    trailing: TrailingData, tmp_path: Path
) -> None:
    padded = tmp_path / "padded.jpg"
    shutil.copy(sample("unsigned.jpg"), padded)
    with padded.open("ab") as fh:
        fh.write(b"appended payload")
    report = analyze(padded)
    (reason,) = [r for r in report.verdict.reasons if str(r.signal) == "trailing_data"]
    assert reason.finding == "trailing_data.present"
    assert reason.effect == "neutral"
    assert reason.detail == "16 bytes follow the image's end marker"
    assert report.verdict.label == "inconclusive"  # context never decides
    assert "trailing_data" in report.timings_ms

    clean = analyze(sample("unsigned.jpg"))
    assert not [r for r in clean.verdict.reasons if str(r.signal) == "trailing_data"]


def test_the_example_finds_bytes_after_the_last_end_marker() -> None:
    assert trailing_bytes(b"\xff\xd8...\xff\xd9") == 0
    assert trailing_bytes(b"\xff\xd8...\xff\xd9tail") == 4
    assert trailing_bytes(b"no marker") == 0


def test_unregistered_signals_are_gone() -> None:
    sig = TrailingData()
    signals.register(sig)  # type: ignore[arg-type]
    signals.unregister(sig.name)
    assert "trailing_data" not in [s.name for s in signals.signals()]


def test_the_image_is_decoded_and_hashed_even_when_no_signal_reads_pixels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    only = {name: signals.signal(name) for name in ("file", "c2pa", "known_media")}
    monkeypatch.setattr(signals, "_REGISTRY", only)
    report = analyze(sample("unsigned.jpg"))
    assert report.media.pdq is not None  # banks still have a hash to match
    assert "decode" in report.timings_ms
    assert report.metadata is None
    assert report.detectors == ()
