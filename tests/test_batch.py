"""`shingan batch`: complete results written as they come, resume, errors, workers."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.batch import BatchError, Sink, run, walk
from service.cli import main
from tests.conftest import SAMPLES

NAMES = [
    "camera_capture.jpg",
    "tampered.jpg",
    "unsigned.jpg",
    "ai_metadata.png",
    "signed_video.mp4",
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "incoming"
    (d / "sub").mkdir(parents=True)
    for i, name in enumerate(NAMES):
        shutil.copy(SAMPLES / name, (d / "sub" if i % 2 else d) / name)
    (d / "notes.txt").write_text("not media")
    (d / ".hidden.jpg").write_bytes(b"skipped")
    return d


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_walk_is_ordered_and_skips_hidden(folder: Path) -> None:
    files = [p.name for p in walk([folder])]
    assert ".hidden.jpg" not in files
    assert len(files) == len(NAMES) + 1
    with pytest.raises(BatchError):
        list(walk([folder / "missing"]))


def test_files_that_are_not_media_are_skipped_and_counted(folder: Path, tmp_path: Path) -> None:
    (folder / "sub" / "signing-key.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    (folder / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (folder / "sub" / "meta.json").write_text("{}")
    (folder / "empty.jpg").write_bytes(b"")
    out = tmp_path / "results.csv"
    summary = run([folder], out)
    assert (summary.analysed, summary.errors, summary.not_media) == (5, 1, 4)
    got = {Path(r["path"]).name: r["error_code"] for r in rows(out)}
    assert got["empty.jpg"] == "empty_media"  # broken media is an error, not skipped
    assert "notes.txt" not in got
    assert "run.sh" not in got

    code = CliRunner().invoke(main, ["batch", str(folder), "--out", str(tmp_path / "b.csv")])
    assert code.exit_code == 1  # the empty JPEG
    assert "4 not media (skipped)" in code.stderr
    (folder / "empty.jpg").unlink()
    clean = CliRunner().invoke(main, ["batch", str(folder), "--out", str(tmp_path / "c.csv")])
    assert clean.exit_code == 0, clean.stderr
    strict = CliRunner().invoke(
        main, ["batch", str(folder), "--strict", "--out", str(tmp_path / "d.csv")]
    )
    assert strict.exit_code == 1
    assert "4 errors, 0 not media" in strict.stderr


def test_csv_run_with_an_error_row(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    summary = run([folder], out, strict=True)
    assert (summary.analysed, summary.errors, summary.total) == (5, 1, 6)
    got = rows(out)
    assert len(got) == 6
    by_name = {Path(r["path"]).name: r for r in got}
    assert by_name["tampered.jpg"]["label"] == "manipulated"
    assert by_name["ai_metadata.png"]["metadata_generator"] == "automatic1111"
    assert by_name["notes.txt"]["error_code"] == "unsupported_media_type"
    assert all(len(r["sha256"]) == 64 for r in got)


def test_resume_after_a_crash_loses_and_repeats_nothing(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    run([folder], out, strict=True)
    lines = out.read_text().splitlines()
    assert "unsupported_media_type" in lines[1]  # notes.txt: a failure no retry can change
    # Simulate a crash in the middle of writing the fourth result.
    out.write_text("\n".join(lines[:3]) + "\n" + lines[3][: len(lines[3]) // 2])
    summary = run([folder], out, resume=True, strict=True)
    assert (summary.skipped, summary.failed_before, summary.analysed) == (3, 1, 3)
    items = []
    for line in out.read_text().splitlines():
        try:
            items.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a torn record was left in the output: {line[:60]}")
    done = [i["media"]["sha256"] for i in items if "media" in i]
    assert len(done) == len(set(done)) == 5
    assert [i["path"] for i in items if "error" in i] == [str(folder / "notes.txt")]
    assert len(items) == 6


def test_resume_retries_failures_that_may_pass(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    run([folder], out, strict=True)
    text = out.read_text().replace("unsupported_media_type", "unreadable")
    out.write_text(text)
    summary = run([folder], out, resume=True, strict=True)
    assert (summary.skipped, summary.errors) == (5, 1)  # tried again (and failed again)
    assert [r["error_code"] for r in rows(out) if r["error_code"]] == [
        "unreadable",
        "unsupported_media_type",
    ]


def test_identical_files_are_analysed_once_and_each_gets_a_row(
    folder: Path, tmp_path: Path
) -> None:
    shutil.copy(SAMPLES / "unsigned.jpg", folder / "copy-of-unsigned.jpg")
    out = tmp_path / "results.csv"
    summary = run([folder], out, strict=True)
    assert (summary.analysed, summary.identical, summary.errors) == (6, 1, 1)
    by_name = {Path(r["path"]).name: r for r in rows(out)}
    assert len(by_name) == 7
    assert by_name["copy-of-unsigned.jpg"]["report_id"] == by_name["unsigned.jpg"]["report_id"]
    # A copy that arrives later gets its row on resume, from the result already written.
    shutil.copy(SAMPLES / "tampered.jpg", folder / "zz-later.jpg")
    again = run([folder], out, resume=True, strict=True)
    assert (again.analysed, again.skipped, again.failed_before) == (0, 8, 1)
    by_name = {Path(r["path"]).name: r for r in rows(out)}
    assert len(rows(out)) == len(by_name) == 8
    assert by_name["zz-later.jpg"]["label"] == "manipulated"


def test_existing_output_needs_resume(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    run([folder / "sub"], out)
    with pytest.raises(BatchError, match=r"--resume"):
        Sink(out, resume=False)
    with pytest.raises(BatchError, match=r"\.csv or \.jsonl"):
        Sink(tmp_path / "r.txt", resume=False)


def test_two_workers_give_the_same_results(folder: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    run([folder], one)
    run([folder], two, workers=2)
    key = lambda r: (r["sha256"], r["label"], r["c2pa_state"])  # noqa: E731
    assert sorted(map(key, rows(one))) == sorted(map(key, rows(two)))


def test_cli_exit_codes_and_summary(folder: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli.csv"
    result = runner.invoke(main, ["batch", str(folder), "--strict", "--out", str(out)])
    assert result.exit_code == 1  # the text file could not be analysed
    assert "5 analysed" in result.stderr
    assert "files/s" in result.stderr
    again = runner.invoke(main, ["batch", str(folder), "--out", str(out)])
    assert again.exit_code == 2
    clean = runner.invoke(main, ["batch", str(folder / "sub"), "--out", str(tmp_path / "ok.jsonl")])
    assert clean.exit_code == 0
