"""Known-media banks from CSV: `shingan banks add`, lookups in reports, rule 4, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from service.banks import BankError, BankSet, read_bank_csv
from service.cli import main
from service.config import ConfigError, load_config
from service.pipeline import analyze
from tests.conftest import sample


@pytest.fixture
def bank(tmp_path: Path) -> Path:
    out = tmp_path / "fakes.csv"
    args = ["banks", "add", "--out", str(out), "--bank", "fact-checks", "--label", "manipulated"]
    files = [str(sample("unsigned.jpg")), str(sample("signed_video.mp4"))]
    result = CliRunner().invoke(main, [*args, "--note", "debunked 2026-11", *files])
    assert result.exit_code == 0, result.stderr
    return out


def test_banks_add_writes_entries_for_images_and_video_frames(bank: Path) -> None:
    entries = read_bank_csv(bank)
    assert [e.entry for e in entries] == [
        "unsigned.jpg",
        "signed_video.mp4#t=0.0",
        "signed_video.mp4#t=1.0",
    ]
    assert {e.label for e in entries} == {"manipulated"}
    assert all(len(e.pdq) == 64 for e in entries)


def test_a_recompressed_copy_matches_the_bank(bank: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.jpg"
    Image.open(sample("unsigned.jpg")).resize((480, 320)).save(copy, quality=70)
    options = load_config(
        overrides={"banks": [str(bank)], "data_dir": str(tmp_path)}
    ).analyze_options()
    r = analyze(copy, options).to_dict()
    assert r["matches"][0]["entry"] == "unsigned.jpg"
    assert r["matches"][0]["distance"] <= 31
    assert (r["verdict"]["label"], r["verdict"]["basis"]) == ("manipulated", ["known_media"])
    assert "fact-checks" in r["verdict"]["summary"]
    other = analyze(sample("camera_capture.jpg"), options).to_dict()
    assert other["matches"] == []


def test_video_frames_are_looked_up(bank: Path, tmp_path: Path) -> None:
    options = load_config(
        overrides={"banks": [str(bank)], "data_dir": str(tmp_path)}
    ).analyze_options()
    r = analyze(sample("signed_video.mp4"), options).to_dict()
    assert {m["entry"] for m in r["matches"]} >= {"signed_video.mp4#t=0.0"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bank,entry,label\nb,e,manipulated\n", "missing column"),
        ("bank,entry,label,pdq\nb,e,fake,{h}\n", "label must be"),
        ("bank,entry,label,pdq\nb,e,manipulated,xyz\n", "PDQ"),
    ],
)
def test_bad_bank_files(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(text.format(h="0" * 64))
    with pytest.raises(BankError, match=message):
        BankSet.load([f])
    with pytest.raises(ConfigError, match="banks"):
        load_config(overrides={"banks": [str(f)]}).build_banks()
