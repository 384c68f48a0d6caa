"""Regression tests for the defects found by attacking the service (issue 11).

Every hostile input is built in the test from the project's own samples (tests/hostile.py).
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.cli import main
from tests.conftest import sample
from tests.hostile import heic_ispe, nested_xmp_jpeg, sof_patched_jpeg
from tests.test_batch_api import make_app, post_files, wait_done
from tests.test_cli import run
from tests.test_ui import upload


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = make_app(tmp_path)
    yield app
    app.extensions["shingan"].runner.stop()


def verify(client: FlaskClient, data: bytes, name: str) -> Any:
    return client.post(
        "/v1/verify", data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data"
    )


# --- 1. XMP in cubic time ---------------------------------------------------------------------


def test_nested_xmp_upload_is_answered_quickly(client: FlaskClient) -> None:
    started = time.perf_counter()
    res = verify(client, nested_xmp_jpeg(1000), "xmp.jpg")
    assert res.status_code == 200
    assert time.perf_counter() - started < 10  # was 27 s in the metadata stage alone
    fields = res.get_json()["provenance"]["metadata"]["fields"]
    assert fields["XMP:error"].startswith("XMP packet too large or deeply nested")


# --- 2 and 9. Pixel bombs and a malformed HEIC ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("sof.jpg", sof_patched_jpeg(13000, 13000)),
        ("ispe.heic", heic_ispe(60000, 60000)),
    ],
)
def test_pixel_bombs_are_refused_everywhere(
    app: Flask, client: FlaskClient, tmp_path: Path, name: str, data: bytes
) -> None:
    res = verify(client, data, name)
    assert res.status_code == 422
    assert res.get_json()["error"]["code"] == "too_many_pixels"
    page = upload(client, data, name)
    assert page.status_code == 422
    assert "text/html" in page.headers["Content-Type"]
    status, body, _ = post_files(client, [(name, data)])
    assert status == 202
    done = wait_done(client, body["id"])
    item = client.get(f"/v1/batches/{done['id']}").get_json()["items"][0]
    assert item["error"]["code"] == "too_many_pixels"
    path = tmp_path / name
    path.write_bytes(data)
    code, out, err = run("verify", str(path), str(sample("unsigned.jpg")))
    assert code == 1
    assert "unsigned.jpg" in out  # the next file is still analysed
    assert "pixels" in err


def test_cli_keeps_going_after_an_unexpected_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import service.pipeline as pipeline

    real = pipeline.analyze  # the CLI looks it up when a verify begins

    def flaky(path: Any, *args: Any, **kw: Any) -> Any:
        if Path(path).name == "unsigned.jpg":
            raise RuntimeError("decoder exploded")
        return real(path, *args, **kw)

    monkeypatch.setattr(pipeline, "analyze", flaky)
    from click.testing import CliRunner

    result = CliRunner().invoke(
        main, ["verify", str(sample("unsigned.jpg")), str(sample("tampered.jpg"))]
    )
    assert result.exit_code == 1
    assert "tampered.jpg" in result.stdout
    assert "internal error (RuntimeError)" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_default_pixel_limit_is_below_pillows() -> None:
    from PIL import Image

    from service.config import load_config

    assert load_config(env={}).max_pixels <= 2 * (Image.MAX_IMAGE_PIXELS or 0)


# --- 11. CSV cells from `shingan batch` -------------------------------------------------------


def test_batch_csv_neutralises_formulas_and_control_characters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import csv
    import shutil

    names = ["=HYPERLINK(1).jpg", "new\nline\x1b[31m.jpg", "@sum.jpg", "plain.jpg"]
    for i, name in enumerate(names):
        shutil.copyfile(sample("unsigned.jpg" if i % 2 else "tampered.jpg"), tmp_path / name)
    monkeypatch.chdir(tmp_path)  # relative paths, as `shingan batch *.jpg` writes them
    code, _, err = run("batch", *names, "--out", "r.csv")
    assert code == 0, err
    text = (tmp_path / "r.csv").read_text(encoding="utf-8")
    assert "\x1b" not in text
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    for row in rows:
        for cell in row.values():
            assert cell[:1] not in ("=", "+", "-", "@"), cell
            assert not any(ord(c) < 32 for c in cell), cell
    assert sorted(r["path"] for r in rows) == [
        "'=HYPERLINK(1).jpg",
        "'@sum.jpg",
        "new\ufffdline\ufffd[31m.jpg",
        "plain.jpg",
    ]
    # resuming finds every file done, although the output spells some names differently
    code, _, err = run("batch", *names, "--out", "r.csv", "--resume")
    assert code == 0, err
    assert len(list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text())))) == 4


# --- 14. /readyz on a keyed server ------------------------------------------------------------


def test_readyz_shows_configuration_only_to_key_holders(tmp_path: Path) -> None:
    from service.web import create_app

    keyed = create_app({"data_dir": str(tmp_path / "data"), "api_keys": "required"})
    try:
        key = keyed.extensions["shingan"].store.keys.create_key("ops")
        client = keyed.test_client()
        anonymous = client.get("/readyz")
        assert anonymous.status_code == 200
        assert anonymous.get_json() == {"status": "ready"}
        wrong = client.get("/readyz", headers={"Authorization": "Bearer shg_wrong"})
        assert "checks" not in wrong.get_json()
        full = client.get("/readyz", headers={"Authorization": f"Bearer {key}"}).get_json()
        assert full["checks"]["c2pa"]["sdk"]
        assert "loaded" in full["checks"]["detectors"]
    finally:
        keyed.extensions["shingan"].runner.stop()


# --- 13. Webhooks into the service's own network ----------------------------------------------


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT (shared)
        ("169.254.169.254", False),  # cloud metadata
        ("0.0.0.0", False),  # noqa: S104
        ("224.0.0.1", False),
        ("240.0.0.1", False),  # reserved
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),  # unique local
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:169.254.169.254", False),
        ("2002:7f00:0001::", False),  # 6to4 of 127.0.0.1
        ("ff02::1", False),
    ],
)
def test_webhook_addresses(address: str, public: bool) -> None:
    import ipaddress

    from service.webhooks import is_public

    assert is_public(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost/hook",
        "http://user:pa55w0rd@127.0.0.1/",
        "https://token@93.184.216.34/",
        "ftp://93.184.216.34/",
        "http:///nohost",
    ],
)
def test_webhooks_into_private_networks_are_refused(client: FlaskClient, url: str) -> None:
    files = [("unsigned.jpg", sample("unsigned.jpg").read_bytes())]
    status, body, _ = post_files(client, files, webhook_url=url)
    assert status == 400
    assert body["error"]["code"] == "bad_webhook"
    assert "pa55w0rd" not in body["error"]["message"]


def test_allowed_hosts_and_shown_url(tmp_path: Path) -> None:
    app = make_app(tmp_path, webhook_allowed_hosts=["127.0.0.0/8"])
    try:
        client = app.test_client()
        files = [("unsigned.jpg", sample("unsigned.jpg").read_bytes())]
        status, body, _ = post_files(
            client, files, webhook_url="http://127.0.0.1:9/hook?token=s3cr3t#frag"
        )
        assert status == 202
        assert body["webhook"]["url"] == "http://127.0.0.1:9/hook?…"
        assert "s3cr3t" not in str(client.get(f"/v1/batches/{body['id']}").get_json())
    finally:
        app.extensions["shingan"].runner.stop()


def test_webhook_address_is_checked_again_when_sending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name was public when the batch was made, private when it is sent."""
    import ipaddress

    import service.webhooks as webhooks
    from service.store import Store, default_url

    store = Store(default_url(tmp_path))
    try:
        url = "https://hooks.example.org/in"
        monkeypatch.setattr(webhooks, "resolve", lambda h, p: [ipaddress.ip_address("8.8.8.8")])
        webhooks.check_url(url)
        store.batches.create_batch("d" * 32, [], actor="test", webhook_url=url, webhook_secret="s")
        monkeypatch.setattr(webhooks, "resolve", lambda h, p: [ipaddress.ip_address("10.0.0.9")])
        assert not webhooks.deliver_webhook(
            store.batches, "d" * 32, attempts=3, sleep=lambda _: None
        )
        batch = store.batches.get_batch("d" * 32)
        assert batch is not None
        assert batch.webhook is not None
        assert batch.webhook.state == "refused"
        assert batch.webhook.attempts == 1
    finally:
        store.close()


# --- 6, 7, 8. Batch limits, orphaned media, two batches sharing a file -------------------------


def _media_files(app: Flask) -> list[Path]:
    root = app.extensions["shingan"].media.root
    return [p for p in root.rglob("*") if p.is_file() and p.parent.name != "tmp"]


def test_the_size_limit_is_per_batch_not_per_archive(tmp_path: Path) -> None:
    from tests.test_batch_api import zip_bytes

    app = make_app(tmp_path, max_batch_mb=1)
    try:
        # each archive expands to 0.5 MiB (under the limit alone), 1.5 MiB together
        archives = [
            (f"part{i}.zip", zip_bytes({f"f{i}.jpg": bytes([i]) * (512 * 1024)})) for i in range(3)
        ]
        status, body, _ = post_files(app.test_client(), archives)
        assert status == 413, body
        assert body["error"]["code"] == "too_large"
        assert _media_files(app) == []  # what was stored before the refusal is gone
        status, body, _ = post_files(app.test_client(), archives[:1])
        assert status == 202
    finally:
        app.extensions["shingan"].runner.stop()


def test_a_refused_batch_leaves_no_media(app: Flask, client: FlaskClient) -> None:
    from tests.test_batch_api import zip_bytes

    bomb = zip_bytes({"bomb.jpg": b"\0" * (20 * 1024 * 1024)})
    files = [
        ("a.jpg", sample("unsigned.jpg").read_bytes()),
        ("b.png", sample("ai_generated.png").read_bytes()),
        ("bomb.zip", bomb),
    ]
    status, body, _ = post_files(client, files)
    assert status == 400
    assert body["error"]["code"] == "zip_bomb"
    assert _media_files(app) == []
    store = app.extensions["shingan"].store
    assert store.holds.needed_shas() == set()


def test_media_left_by_a_killed_intake_is_swept_at_start(tmp_path: Path) -> None:
    from service.media_store import MediaStore
    from service.store import Store, default_url

    data = tmp_path / "data"
    store = Store(default_url(data))
    media = MediaStore(data / "media")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    holder = f"{socket.gethostname()[:80]}:{dead.pid}:killed"
    with sample("unsigned.jpg").open("rb") as fh:
        sha, _ = media.put_stream(fh, 10**9, lambda s: store.holds.hold_media(holder, s))
    (data / "media" / "tmp" / "in-partial").write_bytes(b"half an upload")
    old = time.time() - 7200
    os.utime(data / "media" / "tmp" / "in-partial", (old, old))
    assert media.path(sha).exists()
    store.close()
    app = make_app(tmp_path)  # the service starts: its sweep finds the dead intake's file
    try:
        assert not media.path(sha).exists()
        assert not (data / "media" / "tmp" / "in-partial").exists()
    finally:
        app.extensions["shingan"].runner.stop()


def test_two_batches_sharing_a_file_never_lose_it(tmp_path: Path) -> None:
    """Batch A's item finishes while batch B's intake has just stored the same file."""
    from service.media_store import MediaStore
    from service.store import NewItem, Store, default_url

    store = Store(default_url(tmp_path))
    media = MediaStore(tmp_path / "media")
    try:
        with sample("unsigned.jpg").open("rb") as fh:
            sha, size = media.put_stream(fh, 10**9, lambda s: store.holds.hold_media("A", s))
        (a_item,) = store.batches.create_batch(
            "a" * 32, [NewItem("x.jpg", sha, size)], actor="t", holder="A"
        )
        # B's intake stores the same bytes (held) but has not created its batch yet
        with sample("unsigned.jpg").open("rb") as fh:
            media.put_stream(fh, 10**9, lambda s: store.holds.hold_media("B", s))
        store.batches.finish_item(a_item, error=("x", "done"))
        assert not media.release(sha, store.holds)  # B's hold keeps it
        (b_item,) = store.batches.create_batch(
            "b" * 32, [NewItem("y.jpg", sha, size)], actor="t", holder="B"
        )
        assert not media.release(sha, store.holds)  # B's item needs it
        assert media.path(sha).exists()
        store.batches.finish_item(b_item, error=("x", "done"))
        assert media.release(sha, store.holds)  # the last item is done: the file goes
        assert not media.path(sha).exists()
    finally:
        store.close()


# --- 5. Owners for banks and reports ----------------------------------------------------------


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _verify_as(client: FlaskClient, key: str, data: bytes) -> dict[str, Any]:
    res = client.post(
        "/v1/verify",
        data={"file": (io.BytesIO(data), "x.jpg")},
        headers=_as(key),
        content_type="multipart/form-data",
    )
    assert res.status_code == 200, res.get_json()
    body: dict[str, Any] = res.get_json()
    return body


def _add_media(client: FlaskClient, key: str, bank: str, data: bytes) -> int:
    res = client.post(
        f"/v1/banks/{bank}/entries",
        data={"file": (io.BytesIO(data), "viral.jpg")},
        headers=_as(key),
        content_type="multipart/form-data",
    )
    return int(res.status_code)


def test_banks_and_reports_belong_to_their_key(keyed: Flask) -> None:
    from service.store import ADMIN

    store = keyed.extensions["shingan"].store
    alice, bob = store.keys.create_key("alice"), store.keys.create_key("bob")
    admin = store.keys.create_key("ops", role=ADMIN)
    client = keyed.test_client()
    photo = sample("unsigned.jpg").read_bytes()

    # alice's private bank decides her verifications, and nobody else's
    res = client.post(
        "/v1/banks", json={"name": "alice-fakes", "label": "manipulated"}, headers=_as(alice)
    )
    assert res.status_code == 201
    assert res.get_json()["shared"] is False
    assert _add_media(client, alice, "alice-fakes", photo) == 200
    assert _verify_as(client, alice, photo)["verdict"]["label"] == "manipulated"
    theirs = _verify_as(client, bob, photo)
    assert theirs["verdict"]["label"] == "inconclusive"
    assert theirs["matches"] == []
    names = [b["name"] for b in client.get("/v1/banks", headers=_as(bob)).get_json()["banks"]]
    assert "alice-fakes" not in names
    assert _add_media(client, bob, "alice-fakes", photo) == 404
    assert client.delete("/v1/banks/alice-fakes", headers=_as(bob)).status_code == 404
    assert client.get("/v1/banks/alice-fakes/entries.csv", headers=_as(bob)).status_code == 404

    # reports: the owner and admins
    mine = _verify_as(client, alice, photo)["id"]
    assert client.get(f"/v1/reports/{mine}", headers=_as(alice)).status_code == 200
    assert client.get(f"/v1/reports/{mine}", headers=_as(bob)).status_code == 404
    assert client.get(f"/v1/reports/{mine}", headers=_as(admin)).status_code == 200

    # only an admin shares a bank; shared banks are read-only to the others
    res = client.post(
        "/v1/banks",
        json={"name": "bob-shared", "label": "authentic", "shared": True},
        headers=_as(bob),
    )
    assert res.status_code == 403
    res = client.post(
        "/v1/banks",
        json={"name": "desk-originals", "label": "authentic", "shared": True},
        headers=_as(admin),
    )
    assert res.status_code == 201
    assert _add_media(client, admin, "desk-originals", sample("tampered.jpg").read_bytes()) == 200
    listed = {b["name"]: b for b in client.get("/v1/banks", headers=_as(bob)).get_json()["banks"]}
    assert listed["desk-originals"]["shared"] is True
    assert listed["desk-originals"]["writable"] is False
    assert _add_media(client, bob, "desk-originals", photo) == 403
    assert client.delete("/v1/banks/desk-originals", headers=_as(bob)).status_code == 403
    assert _verify_as(client, bob, sample("tampered.jpg").read_bytes())["matches"]

    # admins see and manage every bank
    every = [b["name"] for b in client.get("/v1/banks", headers=_as(admin)).get_json()["banks"]]
    assert every == ["alice-fakes", "desk-originals"]
    assert client.delete("/v1/banks/alice-fakes", headers=_as(admin)).status_code == 204


def test_batch_items_use_their_owners_banks(keyed: Flask) -> None:
    store = keyed.extensions["shingan"].store
    alice, bob = store.keys.create_key("alice"), store.keys.create_key("bob")
    client = keyed.test_client()
    photo = sample("unsigned.jpg").read_bytes()
    client.post("/v1/banks", json={"name": "mine", "label": "manipulated"}, headers=_as(alice))
    assert _add_media(client, alice, "mine", photo) == 200
    labels = {}
    for who, key in (("alice", alice), ("bob", bob)):
        res = client.post(
            "/v1/batches",
            data={"file": [(io.BytesIO(photo), "x.jpg")]},
            headers=_as(key),
            content_type="multipart/form-data",
        )
        assert res.status_code == 202
        batch_id = res.get_json()["id"]
        deadline = time.monotonic() + 60
        while (b := client.get(f"/v1/batches/{batch_id}", headers=_as(key)).get_json())[
            "status"
        ] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        labels[who] = b["items"][0]["label"]
    assert labels == {"alice": "manipulated", "bob": "inconclusive"}


def test_report_pages_and_cli_roles(keyed: Flask, tmp_path: Path) -> None:
    from tests.test_pages import csrf_of, page

    store = keyed.extensions["shingan"].store
    alice, bob = store.keys.create_key("alice"), store.keys.create_key("bob")
    client = keyed.test_client()
    report_id = _verify_as(client, alice, sample("unsigned.jpg").read_bytes())["id"]
    form = page(client, "/signin")
    client.post("/signin", data={"csrf": csrf_of(form), "key": bob, "next": "/"})
    assert client.get(f"/reports/{report_id}").status_code == 404
    client.post("/signout", data={"csrf": csrf_of(page(client, "/"))})
    form = page(client, "/signin")
    client.post("/signin", data={"csrf": csrf_of(form), "key": alice, "next": "/"})
    assert client.get(f"/reports/{report_id}").status_code == 200

    env = {"SHINGAN_DATA_DIR": str(tmp_path / "data")}
    code, out, _ = run("keys", "create", "--name", "root", "--admin", env=env)
    assert code == 0
    code, out, _ = run("keys", "list", env=env)
    roles = {line.split("\t")[0]: line.split("\t")[4] for line in out.splitlines()}
    assert roles == {"alice": "user", "bob": "user", "root": "admin"}
    code, _, _ = run("banks", "create", "official", "--label", "authentic", env=env)
    assert code == 0
    assert store.banks.get_bank("official").shared is True  # an operator's bank is for everyone


# --- 10. Bank CSV import in bounded memory ----------------------------------------------------


def _bank_csv(path: Path, rows: int, bad_at: int | None = None) -> None:
    import random

    rng = random.Random(4)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("bank,entry,label,pdq,note,source\n")
        for i in range(rows):
            pdq = "zz" if i == bad_at else f"{rng.getrandbits(256):064x}"
            fh.write(f"b,item-{i}.jpg,manipulated,{pdq},debunked on day {i % 365},desk\n")


def test_bank_csv_import_streams(app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    import tracemalloc

    client.post("/v1/banks", json={"name": "b", "label": "manipulated"})
    path = tmp_path / "big.csv"
    _bank_csv(path, 100_000)  # 12 MB
    tracemalloc.start()
    try:
        with path.open("rb") as fh:
            res = client.post("/v1/banks/b/entries", data=fh, content_type="text/csv")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert res.status_code == 200, res.get_json()
    assert res.get_json()["added"] == 100_000
    # reading it whole, decoding it and listing its rows peaked at 304 MB of Python objects;
    # streamed, the peak is the store's insert chunk (about 30 MB), whatever the file's size
    assert peak < 60 * 1024 * 1024, peak


def test_bank_csv_import_is_all_or_nothing(app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    client.post("/v1/banks", json={"name": "b", "label": "manipulated"})
    path = tmp_path / "bad.csv"
    _bank_csv(path, 30_000, bad_at=29_990)
    with path.open("rb") as fh:
        res = client.post("/v1/banks/b/entries", data=fh, content_type="text/csv")
    assert res.status_code == 400
    assert res.get_json()["error"]["message"].startswith("upload:29992:")
    listed = client.get("/v1/banks").get_json()["banks"]
    assert listed[0]["entries"] == 0
    one_line = b"bank,entry,label,pdq\n" + b"x" * (200 * 1024)
    res = client.post("/v1/banks/b/entries", data=one_line, content_type="text/csv")
    assert res.status_code == 400
    assert "longer than" in res.get_json()["error"]["message"]
    res = client.post("/v1/banks/b/entries", data=b"bank,entry\n\xff\xfe", content_type="text/csv")
    assert res.status_code == 400
    assert res.get_json()["error"]["message"] == "the CSV is not UTF-8"


def test_bank_csv_over_its_limit(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.app.banks as banks

    monkeypatch.setattr(banks, "MAX_CSV_BYTES", 1000)
    client.post("/v1/banks", json={"name": "b", "label": "manipulated"})
    res = client.post("/v1/banks/b/entries", data=b"a" * 5000, content_type="text/csv")
    assert res.status_code == 413
    assert res.get_json()["error"]["code"] == "too_large"


# --- 3, 4, 12. Requests refused from their head; hosts, origins; JSON errors -------------------


@contextlib.contextmanager
def serving(app: Flask, threads: int = 4) -> Iterator[int]:
    """The app under the real server (waitress with the gate) on a free loopback port."""
    from service.web.server import make_server

    server = make_server(app, host="127.0.0.1", port=0, threads=threads)
    stopped = threading.Event()

    def loop() -> None:
        # server.run() in steps, so that it can be stopped before its sockets are closed:
        # closing them under a running loop made select() fail with EBADF in its thread.
        while not stopped.is_set() and server._map:
            server.asyncore.loop(
                timeout=0.05,
                map=server._map,
                count=1,
            )

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield int(server.effective_port)
    finally:
        stopped.set()
        thread.join(timeout=5)
        server.task_dispatcher.shutdown(timeout=5)
        # Connections the stopped loop had not yet closed (a client that hung up while the
        # loop was stopping) are closed here, not left to the garbage collector, which
        # reported them as unclosed sockets in whichever test ran next.
        for channel in list(server._map.values()):
            if channel is not server:
                channel.close()
        server.close()


def raw(port: int, head: str, body: bytes = b"", *, read_timeout: float = 5.0) -> bytes:
    """Send a request head (and maybe part of a body); return everything answered until the
    server closes the connection or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


def _json_of(answer: bytes) -> dict[str, Any]:
    import json

    body: dict[str, Any] = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    return body


def test_bodies_are_refused_before_they_are_read(keyed: Flask) -> None:
    key = keyed.extensions["shingan"].store.keys.create_key("desk")
    gib = 1 << 30
    with serving(keyed) as port:
        started = time.perf_counter()
        # a 1 GiB upload without a key: answered from its head, the body never sent
        answer = raw(
            port,
            f"POST /v1/verify HTTP/1.1\nHost: 127.0.0.1\nContent-Type: image/jpeg\n"
            f"Content-Length: {gib}\nExpect: 100-continue\n",
        )
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        assert b"100 Continue" not in answer
        assert _json_of(answer)["error"]["code"] == "unauthorized"
        # 250 MiB to a route that takes no body
        answer = raw(
            port, f"POST /healthz HTTP/1.1\nHost: 127.0.0.1\nContent-Length: {250 << 20}\n"
        )
        assert answer.startswith(b"HTTP/1.1 405")
        # over the verify route's own limit, with a good key
        answer = raw(
            port,
            f"POST /v1/verify HTTP/1.1\nHost: 127.0.0.1\nAuthorization: Bearer {key}\n"
            f"Content-Type: image/jpeg\nContent-Length: {gib}\nExpect: 100-continue\n",
        )
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"100 Continue" not in answer
        assert time.perf_counter() - started < 10  # nothing waited for a gigabyte
        # accepted: 100 Continue first, then the body is read and analysed
        data = sample("unsigned.jpg").read_bytes()
        head = (
            f"POST /v1/verify HTTP/1.1\nHost: 127.0.0.1\nAuthorization: Bearer {key}\n"
            f"Content-Type: image/jpeg\nContent-Length: {len(data)}\nExpect: 100-continue\n"
            "Connection: close\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
            assert sock.recv(64).startswith(b"HTTP/1.1 100 Continue")
            sock.sendall(data)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]


def test_server_errors_are_json(app: Flask) -> None:
    with serving(app) as port:
        bad_length = raw(port, "POST /v1/verify HTTP/1.1\nHost: 127.0.0.1\nContent-Length: 12x\n")
        assert bad_length.startswith(b"HTTP/1.1 400")
        assert b"application/json" in bad_length.split(b"\r\n\r\n")[0]
        assert _json_of(bad_length)["error"]["code"] == "bad_request"
        gzip = raw(
            port, "POST /v1/verify HTTP/1.1\nHost: 127.0.0.1\nTransfer-Encoding: gzip, chunked\n"
        )
        assert gzip.startswith(b"HTTP/1.1 501")
        assert _json_of(gzip)["error"]["code"] == "not_implemented"
        huge_header = raw(
            port, "GET /healthz HTTP/1.1\nHost: 127.0.0.1\nX-Pad: " + "a" * 300_000 + "\n"
        )
        assert huge_header.startswith(b"HTTP/1.0 431")  # waitress parses it as HTTP/1.0
        assert _json_of(huge_header)["error"]["code"] == "headers_too_large"


def test_chunked_bodies_meet_the_route_limit(tmp_path: Path) -> None:
    app = make_app(tmp_path, max_upload_mb=0.01)
    try:
        with serving(app) as port:
            chunk = b"x" * 4096
            body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5)) + b"0\r\n\r\n"
            answer = raw(
                port,
                "POST /v1/verify HTTP/1.1\nHost: 127.0.0.1\nContent-Type: image/jpeg\n"
                "Transfer-Encoding: chunked\n",
                body,
            )
            assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
            assert _json_of(answer)["error"]["code"] == "too_large"
    finally:
        app.extensions["shingan"].runner.stop()


def test_host_header_must_be_this_service(app: Flask, tmp_path: Path) -> None:
    client = app.test_client()
    assert client.get("/healthz", headers={"Host": "attacker.example"}).status_code == 400
    res = client.post(
        "/v1/verify", data=sample("unsigned.jpg").read_bytes(), headers={"Host": "rebind.evil"}
    )
    assert res.status_code == 400
    assert res.get_json()["error"]["code"] == "bad_host"
    for host in ("localhost:8080", "127.0.0.1:8080", "[::1]:8080", socket.gethostname()):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
    named = make_app(tmp_path / "named", allowed_hosts=["shingan.newsroom.example"])
    try:
        ok = named.test_client().get("/healthz", headers={"Host": "shingan.newsroom.example"})
        assert ok.status_code == 200
    finally:
        named.extensions["shingan"].runner.stop()


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://attacker.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://attacker.example"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_cross_site_writes_are_refused(client: FlaskClient, headers: dict[str, str]) -> None:
    """The attack: a page on another site posts a form to the keyless loopback service."""
    form = client.post(
        "/v1/banks", data={"name": "poison", "label": "manipulated"}, headers=headers
    )
    assert form.status_code == 403
    assert form.get_json()["error"]["code"] == "cross_site"
    csv = b"bank,entry,label,pdq\npoison,x,manipulated," + b"0" * 64 + b"\n"
    upload = client.post(
        "/v1/banks/poison/entries",
        data={"csv": (io.BytesIO(csv), "bank.csv")},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert upload.status_code == 403
    assert client.get("/v1/banks").get_json()["banks"] == []


def test_same_origin_and_programs_may_write(client: FlaskClient) -> None:
    same = {"Origin": "http://localhost", "Host": "localhost"}
    assert (
        client.post("/v1/banks", json={"name": "a", "label": "authentic"}, headers=same).status_code
        == 201
    )
    fetch = {"Sec-Fetch-Site": "same-origin"}
    assert (
        client.post(
            "/v1/banks", json={"name": "b", "label": "authentic"}, headers=fetch
        ).status_code
        == 201
    )
    assert client.post("/v1/banks", json={"name": "c", "label": "authentic"}).status_code == 201


def test_one_client_never_holds_every_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import urllib.error
    import urllib.request

    import service.app.verify as verify

    release = threading.Event()
    real = verify.analyze  # type: ignore[attr-defined]

    def slow(*args: Any, **kw: Any) -> Any:
        release.wait(20)
        return real(*args, **kw)

    monkeypatch.setattr(verify, "analyze", slow)
    # 1 analysis runs, 3 more requests may wait, 2 of them (running or waiting) per client
    app = make_app(tmp_path, threads=6, analysis_slots=1, max_concurrent_per_client=2)
    data = sample("unsigned.jpg").read_bytes()
    statuses: list[int] = []

    def post(port: int) -> None:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/verify", data=data)
        try:
            with urllib.request.urlopen(req, timeout=30) as res:
                statuses.append(res.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code if exc.headers["Retry-After"] else -exc.code)

    slots = app.extensions["shingan"].slots
    try:
        with serving(app, threads=6) as port:
            workers = [threading.Thread(target=post, args=(port,)) for _ in range(5)]
            for w in workers:
                w.start()
            deadline = time.monotonic() + 10
            while slots.running() + slots.waiting() < 2 or len(statuses) < 3:
                assert time.monotonic() < deadline, statuses
                time.sleep(0.02)
            assert sorted(statuses) == [429, 429, 429]  # answered at once, not queued
            assert (slots.running(), slots.waiting()) == (1, 1)
            started = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                pass
            assert time.perf_counter() - started < 1.0
            release.set()
            for w in workers:
                w.join(30)
        assert sorted(statuses) == [200, 200, 429, 429, 429]
    finally:
        release.set()
        app.extensions["shingan"].runner.stop()


def test_limiter_queues_then_sheds() -> None:
    from service.web.counters import ConcurrencyLimiter

    limiter = ConcurrencyLimiter(running=1, waiting=1, per_client=5, wait_s=0.3)
    assert limiter.acquire("a") is None
    results: list[Any] = []
    waiter = threading.Thread(target=lambda: results.append(limiter.acquire("b")))
    waiter.start()
    deadline = time.monotonic() + 5
    while limiter.waiting() < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    full = limiter.acquire("c")  # one running, one waiting: no room to wait
    assert full is not None
    assert full[:2] == (503, "busy")
    limiter.release("a")
    waiter.join(5)
    assert results == [None]  # the waiter got the freed slot
    timed = limiter.acquire("d")  # waits 0.3 s for a slot that stays taken
    assert timed is not None
    assert timed[0] == 503
    limiter.release("b")
    assert limiter.running() == 0


# --- Deadlines: a stage that overruns costs its signal ------------------------------------------


def test_run_with_deadline_abandons_and_counts() -> None:
    from service.pipeline import StageTimeout, abandoned_stages, run_with_deadline

    gate = threading.Event()
    before = abandoned_stages()
    started = time.perf_counter()
    with pytest.raises(StageTimeout):
        run_with_deadline("slow", 0.2, lambda: gate.wait(10))
    assert time.perf_counter() - started < 2
    assert abandoned_stages() == before + 1
    gate.set()
    deadline = time.monotonic() + 5
    while abandoned_stages() != before:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert run_with_deadline("quick", 5, lambda: 42) == 42
    with pytest.raises(ZeroDivisionError):
        run_with_deadline("broken", 5, lambda: 1 // 0)


def test_a_stalled_stage_costs_its_signal_not_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    import provenance.watermarks as watermarks
    import service.pipeline as pipeline
    from service.config import load_config

    release = threading.Event()
    real = watermarks.detect

    def stalled(*args: Any, **kw: Any) -> Any:
        release.wait(30)
        return real(*args, **kw)

    monkeypatch.setattr(watermarks, "detect", stalled)
    options = replace(load_config(env={}).analyze_options(), stage_timeout_s=0.5)
    try:
        started = time.perf_counter()
        report = pipeline.analyze(sample("sdxl_watermarked.png"), options).to_dict()
        assert time.perf_counter() - started < 10
    finally:
        release.set()
    assert report["provenance"]["watermarks"] == []
    timed = [a for a in report["abstentions"] if a["code"] == "timed_out"]
    assert len(timed) == 1
    assert "watermarks stage took longer than 0.5 s" in timed[0]["message"]
    assert report["verdict"]["label"] == "inconclusive"  # the watermark alone decided it before
    assert report["media"]["hashes"]  # the stages after it ran


def test_the_hash_started_beside_the_signals_keeps_its_deadline_and_guard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PDQ runs in its own thread from the decode on (Run.start); a stall costs the hash (a
    timed_out abstention, its deadline counted from its start), a failure a warning."""
    from dataclasses import replace

    import provenance.hashing as hashing
    import service.pipeline as pipeline
    from service.config import load_config

    release = threading.Event()
    real = hashing.pdq

    def stalled(rgb: Any) -> Any:
        release.wait(30)
        return real(rgb)

    monkeypatch.setattr(hashing, "pdq", stalled)
    options = replace(
        load_config(env={"SHINGAN_DETECTORS": ""}).analyze_options(), stage_timeout_s=0.5
    )
    try:
        started = time.perf_counter()
        report = pipeline.analyze(sample("unsigned.jpg"), options).to_dict()
        assert time.perf_counter() - started < 10
    finally:
        release.set()
    assert report["media"]["hashes"]["pdq"] is None
    timed = [a for a in report["abstentions"] if a["code"] == "timed_out"]
    assert len(timed) == 1
    assert "hashing stage took longer than 0.5 s" in timed[0]["message"]
    assert report["timings_ms"]["hashing"] >= 400

    def broken(rgb: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(hashing, "pdq", broken)
    report = pipeline.analyze(sample("unsigned.jpg"), options).to_dict()
    assert "the hashing stage failed on this file; its result is missing" in report["warnings"]
    assert report["verdict"]["label"] == "inconclusive"
    monkeypatch.setattr(hashing, "pdq", real)
    report = pipeline.analyze(sample("unsigned.jpg"), options).to_dict()
    assert report["media"]["hashes"]["pdq"]
    assert 0 < report["timings_ms"]["hashing"] < report["timings_ms"]["total"]


def test_video_sampling_stops_at_its_deadline(tmp_path: Path) -> None:
    from provenance.media import sample_video_frames

    frames = sample_video_frames(sample("signed_video.mp4"), deadline=time.monotonic() - 1)
    assert frames.timed_out
    assert frames.frames == ()
    whole = sample_video_frames(sample("signed_video.mp4"), deadline=time.monotonic() + 60)
    assert not whole.timed_out
    assert whole.frames


# --- Findings of the fuzzers (fuzz/, docs/measurements/fuzzing.md) ----------------------------


def test_fuzz_finding_corrupt_deflate_member_is_an_item_error(
    app: Flask, client: FlaskClient
) -> None:
    """archive target: a member whose deflate stream is corrupt raised zlib.error (a 500)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.jpg", b"hello world" * 1000)
        zf.writestr("b.jpg", sample("unsigned.jpg").read_bytes())
    data = bytearray(buf.getvalue())
    start = 30 + len("a.jpg")  # the first member's compressed data
    data[start : start + 4] = b"\xff\xff\xff\xff"
    status, body, _ = post_files(client, [("in.zip", bytes(data))])
    assert status == 202, body
    done = wait_done(client, body["id"])
    items = {i["filename"]: i for i in client.get(f"/v1/batches/{done['id']}").get_json()["items"]}
    assert items["in.zip/a.jpg"]["error"]["code"] == "unreadable"
    assert items["in.zip/a.jpg"]["error"]["message"].startswith("cannot unpack")
    assert items["in.zip/b.jpg"]["status"] == "done"


def test_fuzz_finding_nameless_zip_member_refuses_the_archive(client: FlaskClient) -> None:
    """archive target: a member with an empty name made zipfile raise IndexError (a 500)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo(""), b"data")
        zf.writestr("b.jpg", sample("unsigned.jpg").read_bytes())
    status, body, _ = post_files(client, [("in.zip", buf.getvalue())])
    assert status == 400
    assert body["error"]["code"] == "bad_archive"


@pytest.mark.parametrize(
    ("env", "toml"),
    [
        ({"SHINGAN_DATA_DIR": "~no-such-user-shingan/x"}, ""),
        ({"SHINGAN_BANKS": "~no-such-user-shingan/bank.csv"}, ""),
        ({}, 'allowed_ekus = "~no-such-user-shingan/ekus"\n'),
        ({}, 'trust_anchors = ["~no-such-user-shingan/a.pem"]\n'),
    ],
)
def test_fuzz_finding_unknown_user_in_a_path_is_a_config_error(
    tmp_path: Path, env: dict[str, str], toml: str
) -> None:
    """config target: ``~user`` for a user that does not exist made pathlib raise RuntimeError,
    which stopped start-up with a traceback instead of a one-line configuration error."""
    from service.config import ConfigError, load_config

    path = tmp_path / "shingan.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot expand"):
        load_config(path, env=env)


def test_freed_memory_goes_back_to_the_system() -> None:
    import platform

    from service.memory import tune_malloc

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert tune_malloc() is True
    assert tune_malloc(worker=True) is True


def test_the_decode_started_beside_c2pa_keeps_its_deadline_and_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An image is decoded from intake on, beside the C2PA stage (Run.start); its overrun and
    its errors come out where the pixels are first needed, as when it ran there."""
    from dataclasses import replace

    import provenance.c2pa as c2pa_mod
    import service.pipeline as pipeline
    from provenance.media import CorruptMedia, decode_image
    from service.config import load_config

    options = replace(
        load_config(env={"SHINGAN_DETECTORS": ""}).analyze_options(), stage_timeout_s=0.5
    )
    real_decode, real_c2pa = decode_image, c2pa_mod.verify_c2pa
    decoding = threading.Event()

    def noted(*args: Any, **kwargs: Any) -> Any:
        decoding.set()
        return real_decode(*args, **kwargs)

    def c2pa_seeing_the_decode(*args: Any, **kwargs: Any) -> Any:
        assert decoding.wait(5), "the decode had not begun while C2PA ran"
        return real_c2pa(*args, **kwargs)

    monkeypatch.setattr(pipeline, "decode_image", noted)
    monkeypatch.setattr(c2pa_mod, "verify_c2pa", c2pa_seeing_the_decode)
    report = pipeline.analyze(sample("camera_capture.jpg"), options).to_dict()
    assert report["provenance"]["c2pa"]["state"] == "valid", report["warnings"]
    assert report["media"]["hashes"]["pdq"]
    assert 0 < report["timings_ms"]["decode"] < report["timings_ms"]["total"]
    monkeypatch.setattr(c2pa_mod, "verify_c2pa", real_c2pa)

    release = threading.Event()

    def stalled(*args: Any, **kwargs: Any) -> Any:
        release.wait(30)
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(pipeline, "decode_image", stalled)
    try:
        started = time.perf_counter()
        report = pipeline.analyze(sample("unsigned.jpg"), options).to_dict()
        assert time.perf_counter() - started < 10
    finally:
        release.set()
    timed = [a["message"] for a in report["abstentions"] if a["code"] == "timed_out"]
    assert any("decode stage took longer than 0.5 s" in m for m in timed), timed
    assert report["media"]["hashes"]["pdq"] is None

    def corrupt(*args: Any, **kwargs: Any) -> Any:
        raise CorruptMedia("the image data cannot be decoded: bad Huffman code")

    monkeypatch.setattr(pipeline, "decode_image", corrupt)
    report = pipeline.analyze(sample("unsigned.jpg"), options).to_dict()
    assert any("could not be decoded" in w for w in report["warnings"]), report["warnings"]
