"""Reports are kept (media is not), retrievable by id, and every verification is audited."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.store import NewItem, Store, Viewer, default_url
from service.web import openapi
from tests.conftest import sample


def test_report_is_kept_and_served(app: Flask, client: FlaskClient) -> None:
    posted = client.post("/v1/verify", data=sample("tampered.jpg").read_bytes()).get_json()
    fetched = client.get(f"/v1/reports/{posted['id']}")
    assert fetched.status_code == 200
    assert fetched.get_json() == posted
    missing = client.get("/v1/reports/0000")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "not_found"


def test_every_verification_is_audited(app: Flask, client: FlaskClient) -> None:
    for name in ("camera_capture.jpg", "unsigned.jpg"):
        client.post("/v1/verify", data=sample(name).read_bytes())
    store: Store = app.extensions["shingan"].store
    log = store.reports.audit()
    assert [e.label for e in log] == ["inconclusive", "authentic"]
    assert all(e.action == "verify" and e.actor.startswith("ip:") for e in log)
    assert all(len(e.sha256) == 64 for e in log)
    assert "c2pa_sdk" in log[0].versions
    # append-only by construction
    assert not hasattr(store, "delete_audit")
    assert not any(hasattr(store.reports, m) for m in ("delete_audit", "update_audit"))


def test_store_survives_reopening(tmp_path: Path) -> None:
    url = default_url(tmp_path)
    first = Store(url)
    report = {
        "id": "abc",
        "created_at": "2026-11-28T10:00:00+00:00",
        "media": {"sha256": "0" * 64, "filename": "x.jpg"},
        "verdict": {"label": "inconclusive", "confidence": "low"},
        "versions": {"shingan": "0"},
    }
    first.reports.save_report(report, actor="test")
    again = Store(url)  # migrations run again harmlessly
    assert again.reports.get_report("abc") == report
    assert (tmp_path / "shingan.db").is_file()


def _files_holding(folder: Path, blob: bytes) -> list[Path]:
    """Files under ``folder`` whose bytes contain ``blob`` (whatever their name or suffix:
    stored media is kept under its sha256, without one)."""
    return [p for p in folder.rglob("*") if p.is_file() and blob in p.read_bytes()]


def test_media_is_not_kept(app: Flask, client: FlaskClient) -> None:
    media = sample("camera_capture.jpg").read_bytes()
    assert client.post("/v1/verify", data=media).status_code == 200
    data_dir: Path = app.extensions["shingan"].config.data_dir
    assert _files_holding(data_dir, media) == []
    # The check finds media however it is named, so its silence above means something.
    (data_dir / "0" / "f9106bd6").parent.mkdir(parents=True, exist_ok=True)
    (data_dir / "0" / "f9106bd6").write_bytes(b"prefix" + media)
    assert _files_holding(data_dir, media) == [data_dir / "0" / "f9106bd6"]


def test_records_give_the_api_json_in_its_order(tmp_path: Path) -> None:
    """The typed records' JSON is the API's: these keys, in this order (responses are not
    re-sorted), times in ISO 8601 with their zone, the webhook URL without its query."""
    store = Store(default_url(tmp_path))
    try:
        batches = store.batches
        queued = batches.create_batch(
            "e" * 32,
            [NewItem("a.jpg", "1" * 64, 10), NewItem("b.jpg", "", 0, ("empty_media", "empty"))],
            actor="key:desk",
            webhook_url="https://hooks.example.org/in?token=secret",
            webhook_secret="s",
        )
        batch = batches.get_batch("e" * 32)
        assert batch is not None
        data = batch.to_dict()
        assert list(data) == [
            "id",
            "status",
            "actor",
            "created_at",
            "finished_at",
            "total",
            "counts",
            "progress",
            "labels",
            "language",
            "webhook",
        ]
        assert list(data["counts"]) == ["queued", "running", "done", "error"]
        assert data["counts"] == {"queued": 1, "running": 0, "done": 0, "error": 1}
        assert data["progress"] == 0.5
        assert data["finished_at"] is None
        assert data["created_at"].endswith("+00:00")
        assert data["webhook"] == {
            "url": "https://hooks.example.org/in?…",
            "state": "pending",
            "attempts": 0,
        }
        data.pop("actor")  # a fresh dict each time: callers change theirs
        assert batch.to_dict()["actor"] == "key:desk"
        queued_item, refused = (i.to_dict() for i in batches.batch_items("e" * 32))
        assert list(queued_item) == [
            "position",
            "filename",
            "sha256",
            "bytes",
            "status",
            "attempts",
            "label",
            "report_id",
            "error",
            "finished_at",
        ]
        assert queued_item["error"] is None
        assert queued_item["finished_at"] is None
        assert refused["error"] == {"code": "empty_media", "message": "empty"}
        assert batches.claim_item(queued[0]) is not None
        assert batches.finish_item(queued[0], reuse=("r" * 32, "authentic"))
        assert batches.complete_batch_if_done("e" * 32)
        done = batches.get_batch("e" * 32)
        assert done is not None
        assert done.to_dict()["labels"] == {"authentic": 1}
        assert done.progress == 1.0
        assert done.finished_at is not None

        store.banks.create_bank("known", "manipulated", "a note", owner="key:desk", shared=False)
        [bank] = store.banks.list_banks(Viewer("key:desk"))
        assert list(bank.to_dict()) == [
            "name",
            "label",
            "note",
            "source",
            "created_at",
            "entries",
            "shared",
            "owner",
            "writable",
        ]
        assert bank.to_dict()["writable"] is True
        assert bank.entries == 0
        # The OpenAPI document declares every key the API sends (it drops the batch's actor).
        assert set(data) <= set(openapi.Batch.model_fields)
        assert list(queued_item) == list(openapi.BatchItem.model_fields)
        assert list(bank.to_dict()) == list(openapi.Bank.model_fields)
        assert store.banks.list_banks(Viewer("key:other")) == []
    finally:
        store.close()


def _stamp(url: str) -> list[str]:
    import sqlite3

    from service.db_url import sqlite_file

    path = sqlite_file(url)
    assert path is not None
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]


def test_the_schema_head_is_alembics() -> None:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    from service.db_url import SCHEMA_HEAD
    from service.store.db import MIGRATIONS

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_heads() == [SCHEMA_HEAD], (
        "a new migration: set service.db_url.SCHEMA_HEAD to its revision"
    )


def test_a_current_database_opens_without_alembic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.db_url import SCHEMA_HEAD
    from service.store import db

    url = default_url(tmp_path)
    Store(url).close()  # created: Alembic runs
    assert _stamp(url) == [SCHEMA_HEAD]

    def no_alembic(url: str) -> None:
        raise AssertionError("Alembic ran on a database at the latest schema")

    monkeypatch.setattr(db, "migrate", no_alembic)
    again = Store(url)
    assert again.banks.list_banks() == []
    again.close()


def test_an_older_database_is_still_migrated(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    from service.db_url import SCHEMA_HEAD
    from service.store.db import MIGRATIONS

    url = default_url(tmp_path)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0002")
    assert _stamp(url) == ["0002"]
    store = Store(url)
    assert _stamp(url) == [SCHEMA_HEAD]
    store.banks.create_bank("b", "authentic", owner=None, shared=True)
    assert [b.name for b in store.banks.list_banks()] == ["b"]
    store.close()


def test_an_empty_or_broken_file_is_left_to_alembic(tmp_path: Path) -> None:
    """A file that is not a current database is not taken for one: an empty file is migrated,
    a file that is no database fails as it did before the shortcut."""
    from sqlalchemy.exc import DBAPIError

    from service.db_url import SCHEMA_HEAD

    url = default_url(tmp_path)
    (tmp_path / "shingan.db").write_bytes(b"")
    Store(url).close()
    assert _stamp(url) == [SCHEMA_HEAD]
    other = tmp_path / "other"
    other.mkdir()
    (other / "shingan.db").write_bytes(b"not a database " * 100)
    with pytest.raises(DBAPIError):
        Store(default_url(other))
