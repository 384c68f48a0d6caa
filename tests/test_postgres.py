"""The store on a real PostgreSQL server: migrations, reports, batches, banks, keys, races.

CI (.ci/run) starts a server and sets SHINGAN_TEST_POSTGRES_URL (an account that may create
databases); these tests then must run, each in a database of its own. Elsewhere they skip.
"""

from __future__ import annotations

import io
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from service.store import NewItem, Store, normalise_url
from service.web import create_app
from tests.conftest import CA, sample
from tests.test_banks_db import recompressed, verify
from tests.test_batch_api import post_files, wait_done

ADMIN_URL = os.environ.get("SHINGAN_TEST_POSTGRES_URL")


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not ADMIN_URL:
        pytest.skip("SHINGAN_TEST_POSTGRES_URL is not set (.ci/run starts a PostgreSQL server)")
    import psycopg

    name = f"shingan_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(normalise_url(ADMIN_URL).replace("+psycopg", ""), autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"SHINGAN_TEST_POSTGRES_URL={ADMIN_URL} is set but does not answer: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        base = ADMIN_URL.rsplit("/", 1)[0]
        try:
            yield f"{base}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_app(pg_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(
        {
            "data_dir": str(tmp_path / "data"),
            "database_url": pg_url,
            "trust_anchors": [str(CA / "root.pem")],
        }
    )
    yield app
    app.extensions["shingan"].runner.stop()
    app.extensions["shingan"].store.close()


def test_processes_starting_together_migrate_once(pg_url: str) -> None:
    errors: list[BaseException] = []
    stores: list[Store] = []

    def start() -> None:
        try:
            stores.append(Store(pg_url))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert stores[0].url.startswith("postgresql+psycopg://")
    for s in stores:
        s.close()


def test_reports_batches_banks_and_keys(pg_app: Flask, tmp_path: Path) -> None:
    client = pg_app.test_client()
    with client.post("/v1/verify", data=sample("tampered.jpg").read_bytes()) as res:
        report = res.get_json()
    with client.get(f"/v1/reports/{report['id']}") as res:
        assert res.get_json() == report

    unsigned = sample("unsigned.jpg").read_bytes()
    files = [
        ("camera.jpg", sample("camera_capture.jpg").read_bytes()),
        ("a.jpg", unsigned),
        ("b.jpg", unsigned),
        ("n.txt", b"text"),
    ]
    status, body, _ = post_files(client, files)
    assert status == 202
    done = wait_done(client, body["id"])
    assert done["counts"] == {"queued": 0, "running": 0, "done": 3, "error": 1}
    assert done["labels"] == {"authentic": 1, "inconclusive": 2}

    with client.post("/v1/banks", json={"name": "fakes", "label": "manipulated"}) as res:
        assert res.status_code == 201
    with client.post(
        "/v1/banks/fakes/entries", data=recompressed(tmp_path), content_type="text/csv"
    ) as res:
        assert res.status_code == 400  # not a CSV
    with client.post(
        "/v1/banks/fakes/entries",
        data={"file": [(io.BytesIO(unsigned), "viral.jpg")]},
        content_type="multipart/form-data",
    ) as res:
        assert res.get_json()["added"] == 1
    assert verify(client, recompressed(tmp_path))["matches"][0]["entry"] == "viral.jpg"
    with client.delete("/v1/banks/fakes") as res:
        assert res.status_code == 204
    assert verify(client, recompressed(tmp_path))["matches"] == []

    store: Store = pg_app.extensions["shingan"].store
    key = store.keys.create_key("desk")
    assert store.keys.check_key(key) is not None
    store.keys.revoke_key("desk")
    assert store.keys.check_key(key) is None
    assert {"verify", "batch_item", "bank_created"} <= {e.action for e in store.reports.audit(200)}


def test_racing_workers_record_one_result(pg_url: str) -> None:
    """Several processes (here: stores with their own connections) finish one item together."""
    stores = [Store(pg_url) for _ in range(4)]
    try:
        [item] = stores[0].batches.create_batch(
            "r" * 32, [NewItem("x.jpg", "0" * 64, 1)], actor="t"
        )
        claims, finishes = threading.Barrier(len(stores)), threading.Barrier(len(stores))
        wins: list[bool] = []
        tasks = []

        def work(store: Store, n: int) -> None:
            claims.wait()
            tasks.append(store.batches.claim_item(item))  # all claim (a worker died, say)...
            finishes.wait()  # ...then all finish at once
            report = {
                "id": f"report-{n}",
                "created_at": "2026-12-01T00:00:00+00:00",
                "media": {"sha256": "0" * 64, "filename": "x.jpg"},
                "verdict": {"label": "inconclusive", "confidence": "low"},
                "versions": {},
            }
            wins.append(store.batches.finish_item(item, report=report))

        threads = [threading.Thread(target=work, args=(s, n)) for n, s in enumerate(stores)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(t is not None for t in tasks)
        assert sorted(wins) == [False, False, False, True]
        [row] = stores[0].batches.batch_items("r" * 32)
        assert row.status == "done"
        assert row.attempts == 4  # every claim counted, none lost
        assert sum(stores[0].batches.complete_batch_if_done("r" * 32) for _ in range(3)) == 1
    finally:
        for s in stores:
            s.close()


def test_media_holds_and_releases_race_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    """Holds and releases of one file, from many threads: a file is never deleted while a hold
    or an unfinished item needs it (advisory locks serialise the two on PostgreSQL)."""
    from service.media_store import MediaStore

    store = Store(pg_url)
    media = MediaStore(tmp_path / "media")
    data = sample("unsigned.jpg").read_bytes()
    lost: list[str] = []

    def intake(n: int) -> None:
        holder = f"intake-{n}"
        sha, size = media.put_stream(
            io.BytesIO(data), 10**9, lambda s: store.holds.hold_media(holder, s)
        )
        (item,) = store.batches.create_batch(
            secrets.token_hex(16), [NewItem("x.jpg", sha, size)], actor="t", holder=holder
        )
        if not media.path(sha).exists():
            lost.append(holder)
        store.batches.finish_item(item, error=("x", "done"))
        media.release(sha, store.holds)

    try:
        threads = [threading.Thread(target=intake, args=(n,)) for n in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert lost == []
        assert store.holds.needed_shas() == set()
        assert not any(
            p.is_file() for p in (tmp_path / "media").rglob("*") if p.parent.name != "tmp"
        )
    finally:
        store.close()
