"""The ``shingan`` command: output, exit codes, configuration sources."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from samples.make_samples import IPTC, draw_scene, encode, manifest, sign
from service.cli import main
from tests.conftest import CA, running_server, sample

ROOT_PEM = str(CA / "root.pem")


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def reports(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_done_when_states_and_labels() -> None:
    """The acceptance list of the foundation issue, through `shingan verify --json`."""
    names = ["camera_capture.jpg", "ai_generated.png", "tampered.jpg", "unsigned.jpg"]
    files = [str(sample(n)) for n in names]
    code, out, _ = run("verify", "--json", *files)
    assert code == 0
    plain = dict(zip(names, reports(out), strict=True))
    code, out, _ = run("verify", "--json", "--trust-anchors", ROOT_PEM, *files)
    assert code == 0
    anchored = dict(zip(names, reports(out), strict=True))

    def c2pa(r: dict) -> dict:  # type: ignore[type-arg]
        return r["provenance"]["c2pa"]  # type: ignore[no-any-return]

    assert c2pa(anchored["camera_capture.jpg"])["state"] == "trusted"
    assert anchored["camera_capture.jpg"]["verdict"]["label"] == "authentic"  # type: ignore[index]
    assert c2pa(plain["camera_capture.jpg"])["state"] == "valid"
    for r in (plain, anchored):
        assert r["ai_generated.png"]["verdict"]["label"] == "ai_generated"  # type: ignore[index]
        assert c2pa(r["tampered.jpg"])["state"] == "invalid"
        assert "assertion.dataHash.mismatch" in c2pa(r["tampered.jpg"])["codes"]["failure"]
        assert r["tampered.jpg"]["verdict"]["label"] == "manipulated"  # type: ignore[index]
        assert c2pa(r["unsigned.jpg"])["state"] == "absent"
        assert r["unsigned.jpg"]["verdict"]["label"] == "inconclusive"  # type: ignore[index]


def test_text_summary() -> None:
    code, out, err = run("verify", "--trust-anchors", ROOT_PEM, str(sample("ai_generated.png")))
    assert code == 0, err
    assert "verdict    ai_generated (high confidence; basis: c2pa)" in out
    assert "signed by Shingan Test Signer PS256" in out
    assert "AI         yes (trainedAlgorithmicMedia)" in out
    assert "failures   none" in out


def test_missing_and_unsupported_files_exit_1_but_others_are_reported(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_text("not an image at all")
    code, out, err = run(
        "verify", str(sample("unsigned.jpg")), str(tmp_path / "missing.jpg"), str(junk)
    )
    assert code == 1
    assert "unsigned.jpg" in out
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert "missing.jpg" in lines[0]
    assert "junk.jpg" in lines[1]
    assert "supported" in lines[1]


@pytest.mark.parametrize(
    "args",
    [
        ["verify"],  # no files
        ["verify", "--trust-anchors", "/nonexistent/anchor.pem", "x.jpg"],
        ["verify", "--allowed-ekus", "notanoid", "x.jpg"],
        ["--config", "/nonexistent/shingan.toml", "verify", "x.jpg"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    code, _, err = run(*args)
    assert code == 2
    assert err.strip()


def test_environment_configures_trust() -> None:
    code, out, _ = run(
        "verify",
        "--json",
        str(sample("camera_capture.jpg")),
        env={"SHINGAN_TRUST_ANCHORS": ROOT_PEM},
    )
    assert code == 0
    assert reports(out)[0]["verdict"]["label"] == "authentic"  # type: ignore[index]


def test_config_file_relative_paths(tmp_path: Path) -> None:
    anchors = tmp_path / "anchors"
    anchors.mkdir()
    (anchors / "root.pem").write_bytes((CA / "root.pem").read_bytes())
    cfg = tmp_path / "shingan.toml"
    cfg.write_text('[shingan]\ntrust_anchors = ["anchors"]\nallowed_ekus = "sdk"\n')
    code, out, err = run(
        "--config", str(cfg), "verify", "--json", str(sample("camera_capture.jpg"))
    )
    assert code == 0, err
    assert reports(out)[0]["provenance"]["c2pa"]["state"] == "trusted"  # type: ignore[index]


def test_unknown_config_key_is_a_usage_error(tmp_path: Path) -> None:
    cfg = tmp_path / "shingan.toml"
    cfg.write_text("trust_anchor = 'typo.pem'\n")
    code, _, err = run("--config", str(cfg), "verify", str(sample("unsigned.jpg")))
    assert code == 2
    assert "trust_anchor" in err


def test_strings_from_files_cannot_drive_the_terminal(tmp_path: Path) -> None:
    evil_title = "\x1b[2J\x1b]0;pwned\x07<b>title</b>"
    raw = encode(draw_scene(64, 48, seed=4), "JPEG")
    signed = sign(
        raw,
        "image/jpeg",
        manifest(
            evil_title,
            [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"}],
            "image/jpeg",
        ),
        "signer-es256",
    )
    path = tmp_path / "evil\x1b[31m.jpg"
    path.write_bytes(signed)
    code, out, _ = run("verify", str(path))
    assert code == 0
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "title      \N{REPLACEMENT CHARACTER}[2J" in out
    code, out, _ = run("verify", "--json", str(path))
    assert reports(out)[0]["provenance"]["c2pa"]["title"] == evil_title  # type: ignore[index]


def test_version() -> None:
    code, out, _ = run("--version")
    assert code == 0
    assert out.startswith("shingan, version")


def test_serve_answers_verify(tmp_path: Path) -> None:
    """`shingan serve` (the README's first command) starts and answers real HTTP requests."""
    with running_server(tmp_path / "data", SHINGAN_TRUST_ANCHORS=ROOT_PEM) as base:
        req = urllib.request.Request(
            f"{base}/v1/verify",
            data=sample("camera_capture.jpg").read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = json.load(resp)
        assert body["verdict"]["label"] == "authentic"
        bad = urllib.request.Request(f"{base}/v1/verify", data=b"nope" * 10, method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(bad, timeout=30)
        assert info.value.code == 415
        assert json.load(info.value)["error"]["code"] == "unsupported_media_type"


def test_set_overrides_a_setting_on_the_command_line() -> None:
    code, out, err = run(
        "--set",
        f"trust_anchors={ROOT_PEM}",
        "verify",
        "--json",
        str(sample("camera_capture.jpg")),
    )
    assert code == 0, err
    assert reports(out)[0]["verdict"]["label"] == "authentic"  # type: ignore[index]


@pytest.mark.parametrize(
    ("assignment", "message"),
    [("trust_anchor=x.pem", "unknown setting: trust_anchor"), ("no-equals", "KEY=VALUE")],
)
def test_a_bad_set_is_a_usage_error(assignment: str, message: str) -> None:
    code, _, err = run("--set", assignment, "verify", str(sample("unsigned.jpg")))
    assert code == 2
    assert message in err


def test_provenance_only_runs_no_detector_and_says_so(tmp_path: Path) -> None:
    """The triage mode for large archives: every signal but the pixel detectors, and each
    report names the detectors it went without."""
    from service.config import PROVENANCE_ONLY

    photo = tmp_path / "photo.jpg"
    photo.write_bytes(encode(draw_scene(640, 480, seed=12), "JPEG", quality=90))
    env = {"SHINGAN_DATA_DIR": str(tmp_path / "data")}
    code, out, _ = run("verify", "--json", str(photo), env=env)
    assert code == 0
    assert {d["name"] for d in reports(out)[0]["detectors"]} >= {"ai-clip", "faces-mtcnn"}  # type: ignore[attr-defined]
    code, out, _ = run("verify", "--json", "--provenance-only", str(photo), env=env)
    assert code == 0
    report = reports(out)[0]
    assert report["detectors"] == []
    off = [w for w in report["warnings"] if PROVENANCE_ONLY in w]  # type: ignore[attr-defined]
    assert any("ai-clip" in w for w in off)
    assert any("faces-mtcnn" in w for w in off)
    assert report["media"]["hashes"]["pdq"]  # type: ignore[index]

    out_csv = tmp_path / "results.csv"
    code, _, err = run("batch", str(photo), "--out", str(out_csv), "--provenance-only", env=env)
    assert code == 0, err
    import csv

    with out_csv.open(encoding="utf-8", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["detector_score"] == ""
    assert row["label"] == "inconclusive"
