"""Sidecar manifests (.c2pa files): given with a file, or found beside it as C2PA tools do."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from samples.make_samples import IPTC, draw_scene, encode, manifest, sign_sidecar
from service.batch import run
from service.cli import main
from service.config import load_config
from service.options import AnalyzeOptions
from service.pipeline import analyze
from service.web import create_app
from tests.conftest import CA


@pytest.fixture(scope="module")
def signed_apart(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A camera-like JPEG with its credentials in a sidecar, as some newsroom tools publish."""
    folder = tmp_path_factory.mktemp("sidecar")
    raw = encode(draw_scene(320, 200, seed=3), "JPEG", quality=90)
    definition = manifest(
        "photo.jpg",
        [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"}],
        "image/jpeg",
    )
    photo = folder / "photo.jpg"
    photo.write_bytes(raw)
    side = folder / "photo.c2pa"
    side.write_bytes(sign_sidecar(raw, "image/jpeg", definition, "signer-es256"))
    return photo, side


def options(*, find_sidecars: bool = False) -> AnalyzeOptions:
    config = load_config(overrides={"trust_anchors": [str(CA / "root.pem")]})
    return config.analyze_options(find_sidecars=find_sidecars)


def test_a_file_is_validated_against_its_sidecar(signed_apart: tuple[Path, Path]) -> None:
    photo, side = signed_apart
    alone = analyze(photo, options()).to_dict()
    assert alone["provenance"]["c2pa"]["state"] == "absent"  # uploads never look beside
    given = analyze(photo, options(), manifest=side.read_bytes()).to_dict()
    assert given["provenance"]["c2pa"]["state"] == "trusted"
    assert given["provenance"]["c2pa"]["sidecar"] is True
    assert given["verdict"]["label"] == "authentic"
    found = analyze(photo, options(find_sidecars=True)).to_dict()
    assert found["provenance"]["c2pa"]["state"] == "trusted"
    assert found["provenance"]["c2pa"]["sidecar"] is True


def test_a_sidecar_for_other_pixels_shows_the_change(
    signed_apart: tuple[Path, Path], tmp_path: Path
) -> None:
    _, side = signed_apart
    other = tmp_path / "other.jpg"
    other.write_bytes(encode(draw_scene(320, 200, seed=4), "JPEG", quality=90))
    v = analyze(other, options(), manifest=side.read_bytes()).verdict
    assert (v.label, v.rule) == ("manipulated", 1)


def test_the_cli_takes_a_manifest_and_finds_one_beside(
    signed_apart: tuple[Path, Path], tmp_path: Path
) -> None:
    photo, side = signed_apart
    runner = CliRunner()
    anchors = ["--trust-anchors", str(CA / "root.pem")]
    env = {"SHINGAN_DATA_DIR": str(tmp_path / "data")}
    explicit = runner.invoke(
        main, ["verify", "--json", *anchors, "--manifest", str(side), str(photo)], env=env
    )
    assert explicit.exit_code == 0, explicit.stderr
    assert json.loads(explicit.stdout)["provenance"]["c2pa"]["sidecar"] is True
    beside = runner.invoke(main, ["verify", "--json", *anchors, str(photo)], env=env)
    assert json.loads(beside.stdout)["provenance"]["c2pa"]["state"] == "trusted"
    two = runner.invoke(main, ["verify", "--manifest", str(side), str(photo), str(photo)], env=env)
    assert two.exit_code == 2
    empty = tmp_path / "empty.c2pa"
    empty.write_bytes(b"")
    bad = runner.invoke(main, ["verify", "--manifest", str(empty), str(photo)], env=env)
    assert bad.exit_code == 2
    assert "empty" in bad.stderr


def test_a_batch_reads_sidecars_with_their_assets(
    signed_apart: tuple[Path, Path], tmp_path: Path
) -> None:
    photo, _ = signed_apart
    out = tmp_path / "results.jsonl"
    summary = run(
        [photo.parent],
        out,
        strict=True,
        overrides={"trust_anchors": [str(CA / "root.pem")], "data_dir": str(tmp_path / "d")},
    )
    assert (summary.analysed, summary.errors, summary.not_media) == (1, 0, 1)
    [line] = out.read_text().splitlines()
    assert json.loads(line)["provenance"]["c2pa"]["state"] == "trusted"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app({"data_dir": str(tmp_path / "data"), "trust_anchors": [str(CA / "root.pem")]})
    yield app
    app.extensions["shingan"].runner.stop()


def test_the_api_takes_a_manifest_part(signed_apart: tuple[Path, Path], app: Flask) -> None:
    photo, side = signed_apart
    client = app.test_client()
    with photo.open("rb") as fh, side.open("rb") as sc:
        res = client.post("/v1/verify", data={"file": (fh, "photo.jpg"), "manifest": (sc, "m")})
    assert res.status_code == 200, res.get_data(as_text=True)
    assert res.get_json()["provenance"]["c2pa"]["sidecar"] is True
    assert res.get_json()["verdict"]["label"] == "authentic"
    with photo.open("rb") as fh:
        empty = client.post(
            "/v1/verify", data={"file": (fh, "photo.jpg"), "manifest": (io.BytesIO(b""), "m")}
        )
    assert empty.status_code == 400
    assert empty.get_json()["error"]["code"] == "bad_manifest"
