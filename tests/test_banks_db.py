"""Banks kept in the database: CLI and API, CSV exchange, and lookups by every verification."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from service.cli import main
from service.config import load_config
from service.store import default_url, opened
from service.web import create_app
from tests.conftest import CA, sample
from tests.test_api import assert_error
from tests.test_batch_api import schema


def cli(data: Path, *args: str) -> Any:
    return CliRunner().invoke(main, list(args), env={"SHINGAN_DATA_DIR": str(data)})


def recompressed(tmp_path: Path, name: str = "unsigned.jpg") -> bytes:
    buf = io.BytesIO()
    Image.open(sample(name)).resize((480, 320)).save(buf, "JPEG", quality=70)
    return buf.getvalue()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app({"data_dir": str(tmp_path / "data"), "trust_anchors": [str(CA / "root.pem")]})
    yield app
    app.extensions["shingan"].runner.stop()


def verify(client: FlaskClient, data: bytes) -> dict[str, Any]:
    with client.post("/v1/verify", data=data) as res:
        assert res.status_code == 200, res.get_data(as_text=True)
        body: dict[str, Any] = res.get_json()
        return body


def test_cli_create_add_list_export_import(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    made = cli(first, "banks", "create", "fact-checks", "--label", "manipulated", "--note", "2026")
    assert made.exit_code == 0, made.stderr
    again = cli(first, "banks", "create", "fact-checks", "--label", "manipulated")
    assert again.exit_code == 2
    assert "exists already" in again.stderr
    files = [str(sample("unsigned.jpg")), str(sample("signed_video.mp4"))]
    added = cli(first, "banks", "add", "--bank", "fact-checks", "--source", "desk", *files)
    assert added.exit_code == 0, added.stderr
    assert "3 entries added to bank fact-checks" in added.stderr
    listed = cli(first, "banks", "list")
    assert listed.stdout.split("\t")[:3] == ["fact-checks", "manipulated", "3"]
    missing = cli(first, "banks", "add", "--bank", "nope", str(sample("unsigned.jpg")))
    assert missing.exit_code == 2
    assert "no bank named 'nope'" in missing.stderr

    shared = tmp_path / "shared.csv"
    assert cli(first, "banks", "export", "fact-checks", "--out", str(shared)).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(shared.read_text(encoding="utf-8"))))
    assert [r["entry"] for r in rows] == [
        "unsigned.jpg",
        "signed_video.mp4#t=0.0",
        "signed_video.mp4#t=1.0",
    ]
    assert {r["source"] for r in rows} == {"desk"}

    imported = cli(second, "banks", "import", str(shared))
    assert imported.exit_code == 0, imported.stderr
    app = create_app({"data_dir": str(second)})
    try:
        r = verify(app.test_client(), recompressed(tmp_path))
    finally:
        app.extensions["shingan"].runner.stop()
    assert r["matches"][0]["bank"] == "fact-checks"
    assert r["matches"][0]["entry"] == "unsigned.jpg"
    assert r["matches"][0]["distance"] <= 31
    assert (r["verdict"]["label"], r["verdict"]["basis"]) == ("manipulated", ["known_media"])
    # The CLI goes through the application layer: a bank the import creates is audited as made.
    with opened(default_url(second)) as store:
        actions = [(e.actor, e.action, e.versions.get("detail")) for e in store.reports.audit()]
    assert ("cli", "bank_imported", "fact-checks: 3") in actions
    assert ("cli", "bank_created", "fact-checks") in actions


def test_the_cli_uses_the_banks_kept_in_the_database(tmp_path: Path) -> None:
    """The same file must get the same answer through the CLI as through the API."""
    data = tmp_path / "data"
    fresh = cli(data, "verify", "--json", str(sample("unsigned.jpg")))
    assert fresh.exit_code == 0, fresh.stderr
    assert not (data / "shingan.db").exists()  # a one-off verify makes no database
    assert cli(data, "banks", "create", "debunked", "--label", "manipulated").exit_code == 0
    added = cli(data, "banks", "add", "--bank", "debunked", str(sample("unsigned.jpg")))
    assert added.exit_code == 0, added.stderr
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(recompressed(tmp_path))
    verified = cli(data, "verify", "--json", str(copy))
    assert verified.exit_code == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["matches"][0]["bank"] == "debunked"
    assert (report["verdict"]["label"], report["verdict"]["basis"]) == (
        "manipulated",
        ["known_media"],
    )
    out = tmp_path / "results.jsonl"
    batch = cli(data, "batch", str(copy), "--out", str(out))
    assert batch.exit_code == 0, batch.stderr
    assert json.loads(out.read_text())["verdict"]["label"] == "manipulated"


def test_shingan_config_says_where_state_is_kept(tmp_path: Path) -> None:
    data = tmp_path / "state"
    shown = cli(data, "--set", "port=9090", "config")
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.startswith(f"# data folder: {data}\n# database:    sqlite:///")
    written = tmp_path / "effective.toml"
    written.write_text(shown.stdout, encoding="utf-8")
    assert load_config(written, env={}) == load_config(
        env={"SHINGAN_DATA_DIR": str(data)}, overrides={"port": 9090}
    )


def test_api_banks_are_used_at_once_and_forgotten_when_deleted(
    app: Flask, client: FlaskClient, tmp_path: Path
) -> None:
    copy = recompressed(tmp_path)
    assert verify(client, copy)["matches"] == []

    with client.post("/v1/banks", json={"name": "debunked", "label": "manipulated"}) as res:
        assert res.status_code == 201
        assert res.get_json()["entries"] == 0
    with client.post("/v1/banks", json={"name": "debunked", "label": "manipulated"}) as res:
        assert_error(res, 409, "conflict")
    with client.post("/v1/banks", json={"name": "x", "label": "fake"}) as res:
        assert_error(res, 400, "bad_request")
    with client.post("/v1/banks", json={"name": "../etc", "label": "manipulated"}) as res:
        assert_error(res, 400, "bad_request")

    with client.post(
        "/v1/banks/debunked/entries",
        data={
            "file": [
                (io.BytesIO(sample("unsigned.jpg").read_bytes()), "viral.jpg"),
                (io.BytesIO(b"not media"), "notes.txt"),
            ],
            "note": "debunked on 2026-11-30",
        },
        content_type="multipart/form-data",
    ) as res:
        body = res.get_json()
    assert body["added"] == 1
    assert body["errors"][0]["file"] == "notes.txt"

    r = verify(client, copy)  # no restart: the running service sees the new entry
    assert r["matches"][0]["entry"] == "viral.jpg"
    assert r["matches"][0]["note"] == "debunked on 2026-11-30"
    assert r["verdict"]["label"] == "manipulated"

    with client.get("/v1/banks/debunked/entries.csv") as res:
        exported = res.get_data(as_text=True)
    assert res.mimetype == "text/csv"
    assert "viral.jpg" in exported

    with client.post("/v1/banks", json={"name": "originals", "label": "authentic"}) as res:
        assert res.status_code == 201
    with client.post(
        "/v1/banks/originals/entries", data=exported.encode(), content_type="text/csv"
    ) as res:
        assert res.get_json()["added"] == 1
    with client.post(
        "/v1/banks/originals/entries", data=b"entry,label\nx,authentic\n", content_type="text/csv"
    ) as res:
        assert_error(res, 400, "bad_csv")
    with client.get("/v1/banks") as res:
        for bank in res.get_json()["banks"]:
            schema("Bank").validate(bank)
        assert [(b["name"], b["entries"]) for b in res.get_json()["banks"]] == [
            ("debunked", 1),
            ("originals", 1),
        ]

    for name in ("debunked", "originals"):
        with client.delete(f"/v1/banks/{name}") as res:
            assert res.status_code == 204
    assert verify(client, copy)["matches"] == []
    with client.delete("/v1/banks/debunked") as res:
        assert_error(res, 404, "not_found")
    with client.post("/v1/banks/nope/entries", data=b"", content_type="text/csv") as res:
        assert_error(res, 404, "not_found")
    actions = [e.action for e in app.extensions["shingan"].store.reports.audit(limit=50)]
    assert {"bank_created", "bank_entries_added", "bank_imported", "bank_deleted"} <= set(actions)


def test_the_standard_library_reader_agrees_with_the_database_layer(tmp_path: Path) -> None:
    """``shingan verify`` reads a current SQLite file's banks with sqlite3 (no SQLAlchemy):
    the same state, entries and per-caller banks as the store's repository."""
    import sqlite3

    from service.banks import BankEntry
    from service.banks_sqlite import SqliteBanks
    from service.store import Store

    url = default_url(tmp_path)
    store = Store(url)
    try:
        repo = store.banks
        repo.create_bank("shared", "manipulated")
        repo.create_bank("mine", "authentic", owner="key:alice", shared=False)
        repo.create_bank("theirs", "ai_generated", owner="key:bob", shared=False)
        for i, bank in enumerate(["shared", "mine", "theirs", "shared", "mine"]):
            pdq = f"{i:064x}"
            repo.add_bank_entries(bank, [BankEntry(bank, f"e{i}", "x", pdq, f"note {i}", "src")])
        reader = SqliteBanks.open_current(tmp_path / "shingan.db")
        assert reader is not None
        try:
            assert reader.banks_state() == repo.banks_state()
            cases: list[tuple[str | None, int]] = [
                (None, 0),
                (None, 2),
                ("mine", 0),
                ("shared", 1),
                ("none", 0),
            ]
            for name, after in cases:
                got = [BankEntry.of(e) for e in reader.bank_entries(name, after_id=after)]
                want = [BankEntry.of(e) for e in repo.bank_entries(name, after_id=after)]
                assert got == want, (name, after)
                assert [e.id for e in reader.bank_entries(name, after)] == [
                    e.id for e in repo.bank_entries(name, after)
                ]
            assert len(list(reader.bank_entries())) == 5
            for actor in ("key:alice", "key:bob", "key:carol", "local"):
                assert reader.usable_banks(actor) == repo.usable_banks(actor), actor
            repo.delete_bank("theirs")
            assert reader.banks_state() == repo.banks_state()  # the epoch moved: seen at once
        finally:
            reader.close()
    finally:
        store.close()
    # Not the newest schema, or not a database: the caller opens the database layer instead.
    with sqlite3.connect(tmp_path / "shingan.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '0002'")
    db.close()
    assert SqliteBanks.open_current(tmp_path / "shingan.db") is None
    (tmp_path / "junk.db").write_bytes(b"not a database at all")
    assert SqliteBanks.open_current(tmp_path / "junk.db") is None
    assert SqliteBanks.open_current(tmp_path / "missing.db") is None
    assert SqliteBanks.open_current(None) is None


def test_batch_workers_see_entries_added_after_they_started(tmp_path: Path) -> None:
    """A batch worker keeps its banks for hours: a database with no entry yet is still read
    (live), where a one-off verification skips it."""
    from service.banks import BankEntry, LiveBanks
    from service.banks_sqlite import SqliteBanks, database_banks
    from service.store import Store

    config = load_config(env={"SHINGAN_DATA_DIR": str(tmp_path)})
    assert database_banks(config) is None  # no database at all
    store = Store(config.store_url)
    try:
        assert database_banks(config, one_off=True) is None
        source = database_banks(config)
        assert isinstance(source, SqliteBanks)
        options = config.analyze_options(bank_source=source)
        assert isinstance(options.banks, LiveBanks)
        assert options.banks.lookup("a" * 64) == []
        store.banks.create_bank("late", "manipulated")
        store.banks.add_bank_entries("late", [BankEntry("late", "x", "manipulated", "a" * 64)])
        assert [m.entry for m in options.banks.lookup("a" * 64)] == ["x"]
        source.close()
    finally:
        store.close()
