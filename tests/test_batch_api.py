"""``/v1/batches`` (in-process runner): files and zips, refusals, results, webhooks, resume."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator

from service.media_store import MediaStore
from service.store import NewItem, Store, default_url
from service.web import create_app
from service.web.openapi import components
from service.webhooks import deliver_webhook
from tests.conftest import CA, sample
from tests.test_api import assert_error


def schema(name: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": {"schemas": components()}}
    )


def make_app(tmp_path: Path, **settings: Any) -> Flask:
    base = {"data_dir": str(tmp_path / "data"), "trust_anchors": [str(CA / "root.pem")]}
    return create_app({**base, **settings})


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = make_app(tmp_path, webhook_backoff_s=0.05, webhook_allowed_hosts=["127.0.0.1"])
    yield app
    app.extensions["shingan"].runner.stop()


def post_files(client: FlaskClient, files: list[tuple[str, bytes]], **form: str) -> Any:
    data: dict[str, Any] = {"file": [(io.BytesIO(b), n) for n, b in files], **form}
    with client.post("/v1/batches", data=data, content_type="multipart/form-data") as res:
        return res.status_code, res.get_json(), res.headers


def wait_done(client: FlaskClient, batch_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        with client.get(f"/v1/batches/{batch_id}") as res:
            body: dict[str, Any] = res.get_json()
        if body["status"] == "done":
            return body
        assert time.monotonic() < deadline, body["counts"]
        time.sleep(0.1)


def text_of(client: FlaskClient, url: str) -> str:
    with client.get(url) as res:
        assert res.status_code == 200, res.get_data(as_text=True)
        return res.get_data(as_text=True)


def test_batch_of_files_runs_to_done_with_results(app: Flask, client: FlaskClient) -> None:
    unsigned = sample("unsigned.jpg").read_bytes()
    files = [
        ("camera_capture.jpg", sample("camera_capture.jpg").read_bytes()),
        ("unsigned.jpg", unsigned),
        ("copy.jpg", unsigned),
        ("=HYPERLINK(1).txt", b"not media at all"),
        ("empty.jpg", b""),
    ]
    status, body, headers = post_files(client, files)
    assert status == 202, body
    schema("Batch").validate(body)
    assert headers["Location"] == f"/v1/batches/{body['id']}"
    assert body["total"] == 5
    assert body["links"]["results_csv"].endswith("/results.csv")

    done = wait_done(client, body["id"])
    schema("Batch").validate(done)
    assert done["counts"]["done"] == 3
    assert done["counts"]["error"] == 2
    assert done["progress"] == 1.0
    by_name = {i["filename"]: i for i in done["items"]}
    assert by_name["camera_capture.jpg"]["label"] == "authentic"
    assert by_name["copy.jpg"]["report_id"] == by_name["unsigned.jpg"]["report_id"]
    assert by_name["empty.jpg"]["error"]["code"] == "empty_media"
    assert by_name["=HYPERLINK(1).txt"]["error"]["code"] == "unsupported_media_type"

    rows = list(csv.DictReader(io.StringIO(text_of(client, done["links"]["results_csv"]))))
    assert [r["path"] for r in rows][:3] == ["camera_capture.jpg", "unsigned.jpg", "copy.jpg"]
    assert rows[0]["label"] == "authentic"
    assert rows[3]["path"].startswith("'=")  # a spreadsheet shows it; it never runs it
    lines = text_of(client, done["links"]["results_jsonl"]).splitlines()
    parsed = [json.loads(line) for line in lines]
    assert parsed[0]["verdict"]["label"] == "authentic"
    assert parsed[4]["error"]["code"] == "empty_media"

    report_id = by_name["camera_capture.jpg"]["report_id"]
    with client.get(f"/v1/reports/{report_id}") as res:
        assert res.get_json()["media"]["filename"] == "camera_capture.jpg"
    media_root: Path = app.extensions["shingan"].media.root
    assert [p for p in media_root.rglob("*") if p.is_file()] == []  # nothing kept after analysis


def test_items_are_paged(app: Flask, client: FlaskClient) -> None:
    data = sample("unsigned.jpg").read_bytes()
    _, body, _ = post_files(client, [(f"f{i}.jpg", data) for i in range(4)])
    wait_done(client, body["id"])
    with client.get(f"/v1/batches/{body['id']}?offset=1&limit=2") as res:
        page = res.get_json()
    assert [i["filename"] for i in page["items"]] == ["f1.jpg", "f2.jpg"]
    with client.get(f"/v1/batches/{body['id']}?limit=lots") as res:
        assert_error(res, 400, "bad_request")


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_archive_as_raw_body(app: Flask, client: FlaskClient) -> None:
    archive = zip_bytes(
        {
            "election/ballot.jpg": sample("camera_capture.jpg").read_bytes(),
            "election/flyer.png": sample("ai_generated.png").read_bytes(),
            "__MACOSX/._ballot.jpg": b"resource fork",
            "election/.DS_Store": b"finder",
        }
    )
    with client.post(
        "/v1/batches?filename=upload.zip", data=archive, content_type="application/zip"
    ) as res:
        assert res.status_code == 202, res.get_json()
        batch_id = res.get_json()["id"]
    done = wait_done(client, batch_id)
    assert [(i["filename"], i["label"]) for i in done["items"]] == [
        ("upload.zip/election/ballot.jpg", "authentic"),
        ("upload.zip/election/flyer.png", "ai_generated"),
    ]


@pytest.mark.parametrize(
    ("members", "status", "code"),
    [
        ({"../../etc/cron.d/evil.jpg": b"x"}, 400, "unsafe_archive"),
        ({"/abs/evil.jpg": b"x"}, 400, "unsafe_archive"),
        ({"bomb.jpg": b"\0" * (20 * 1024 * 1024)}, 400, "zip_bomb"),
        ({f"f{i}.jpg": b"x" for i in range(6)}, 400, "too_many_files"),
    ],
)
def test_refused_archives(
    tmp_path: Path, members: dict[str, bytes], status: int, code: str
) -> None:
    app = make_app(tmp_path, max_batch_files=5)
    client = app.test_client()
    with client.post(
        "/v1/batches",
        data={"file": (io.BytesIO(zip_bytes(members)), "in.zip")},
        content_type="multipart/form-data",
    ) as res:
        assert_error(res, status, code)
    store: Store = app.extensions["shingan"].store
    assert store.batches.queue_depth() == 0
    app.extensions["shingan"].runner.stop()


def test_bad_batch_requests(app: Flask, client: FlaskClient) -> None:
    with client.post("/v1/batches", data=b"", content_type="application/zip") as res:
        assert_error(res, 400, "missing_file")
    with client.post("/v1/batches", data=b"PK\x03\x04 broken", content_type="application/zip") as r:
        # Not a readable zip: taken as one file, which then fails analysis as unsupported.
        assert r.status_code == 202
    with client.post(
        "/v1/batches",
        data={"file": (io.BytesIO(b"x"), "a.jpg"), "webhook_url": "file:///etc/passwd"},
        content_type="multipart/form-data",
    ) as res:
        assert_error(res, 400, "bad_webhook")
    with client.get("/v1/batches/nope") as res:
        assert_error(res, 404, "not_found")
    with client.get("/v1/batches/nope/results.csv") as res:
        assert_error(res, 404, "not_found")


def test_batch_over_the_size_limit(tmp_path: Path) -> None:
    app = make_app(tmp_path, max_batch_mb=0.05)
    with app.test_client().post(
        "/v1/batches", data=b"\0" * 200_000, content_type="application/zip"
    ) as res:
        assert_error(res, 413, "too_large")
    app.extensions["shingan"].runner.stop()


class Hook(BaseHTTPRequestHandler):
    """Fails the first call with 500, then accepts; records what it was sent."""

    calls: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.calls.append((dict(self.headers), body))
        self.send_response(500 if len(Hook.calls) == 1 else 204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webhook_is_signed_and_retried(app: Flask, client: FlaskClient) -> None:
    Hook.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        files = [("unsigned.jpg", sample("unsigned.jpg").read_bytes())]
        status, body, _ = post_files(client, files, webhook_url=url)
        assert status == 202
        secret = body["webhook_secret"]  # generated, shown once
        deadline = time.monotonic() + 60
        while len(Hook.calls) < 2:
            assert time.monotonic() < deadline, Hook.calls
            time.sleep(0.05)
        deadline = time.monotonic() + 10
        while (b := client.get(f"/v1/batches/{body['id']}").get_json())["webhook"][
            "state"
        ] != "delivered":
            assert time.monotonic() < deadline, b["webhook"]
            time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()
    assert b["webhook"]["attempts"] == 2
    assert "secret" not in json.dumps(b["webhook"])
    headers, payload = Hook.calls[1]
    stamp, mac = (part.split("=", 1)[1] for part in headers["Shingan-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256)
    assert hmac.compare_digest(mac, expected.hexdigest())
    assert abs(int(stamp) - time.time()) < 120
    event = json.loads(payload)
    assert event["event"] == "batch.completed"
    assert event["batch"]["id"] == body["id"]
    assert event["batch"]["counts"]["done"] == 1
    assert "webhook_secret" not in payload.decode()


def test_a_restart_resumes_unfinished_items(tmp_path: Path) -> None:
    """Items queued (or running when the service died) are taken up again at start."""
    data = tmp_path / "data"
    store = Store(default_url(data))
    media = MediaStore(data / "media")
    items = []
    for name in ("camera_capture.jpg", "unsigned.jpg", "ai_generated.png"):
        with sample(name).open("rb") as fh:
            sha, size = media.put_stream(fh, 10**9)
        items.append(NewItem(name, sha, size))
    queued = store.batches.create_batch("b" * 32, items, actor="test")
    assert store.batches.claim_item(queued[0]) is not None  # was running when the process died
    store.close()

    app = make_app(tmp_path)
    client = app.test_client()
    done = wait_done(client, "b" * 32)
    assert [i["label"] for i in done["items"]] == ["authentic", "inconclusive", "ai_generated"]
    assert done["items"][0]["attempts"] == 2
    app.extensions["shingan"].runner.stop()


def test_media_retention_keeps_files_then_purges(tmp_path: Path) -> None:
    app = make_app(tmp_path, media_retention_days=1)
    client = app.test_client()
    data = sample("unsigned.jpg").read_bytes()
    with client.post("/v1/verify", data=data) as res:
        assert res.status_code == 200
    media: MediaStore = app.extensions["shingan"].media
    kept = media.path(hashlib.sha256(data).hexdigest())
    assert kept.read_bytes() == data
    old = time.time() - 2 * 86400
    os.utime(kept, (old, old))
    assert media.sweep(app.extensions["shingan"].store.holds) == 1
    assert not kept.exists()
    app.extensions["shingan"].runner.stop()


class Redirector(BaseHTTPRequestHandler):
    """Answers every POST with a redirect to itself at another path; counts the hits."""

    hits: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        Redirector.hits.append(self.path)
        self.send_response(307)
        self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_redirecting_webhook_is_not_followed(tmp_path: Path) -> None:
    Redirector.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    store = Store(default_url(tmp_path))
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        store.batches.create_batch("c" * 32, [], actor="test", webhook_url=url, webhook_secret="s")
        assert not deliver_webhook(
            store.batches, "c" * 32, attempts=2, sleep=lambda _: None, allowed_hosts=["127.0.0.1"]
        )
    finally:
        server.shutdown()
        server.server_close()
    assert Redirector.hits == ["/hook", "/hook"]  # never /elsewhere
    batch = store.batches.get_batch("c" * 32)
    assert batch is not None
    assert batch.webhook is not None
    assert batch.webhook.state == "failed"
    store.close()
