"""The pages beyond a single check: batches, banks, stored reports, sign-in with an API key."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.store import Store
from service.web import create_app
from service.web.rendering import UI_TEXT
from tests.conftest import CA, sample


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app({"data_dir": str(tmp_path / "data"), "trust_anchors": [str(CA / "root.pem")]})
    yield app
    app.extensions["shingan"].runner.stop()


def page(client: FlaskClient, url: str) -> str:
    with client.get(url) as res:
        assert res.status_code == 200, res.get_data(as_text=True)[:500]
        return res.get_data(as_text=True)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_every_text_exists_in_both_languages() -> None:
    assert set(UI_TEXT["en"]) == set(UI_TEXT["ja"])


def test_batch_page_uploads_shows_progress_and_offers_results(
    app: Flask, client: FlaskClient
) -> None:
    form = page(client, "/batch")
    assert 'type="file" multiple' in form
    assert "<script>" not in form
    files = [
        (io.BytesIO(sample("camera_capture.jpg").read_bytes()), "ballot.jpg"),
        (io.BytesIO(sample("ai_generated.png").read_bytes()), "<b>flyer</b>.png"),
    ]
    with client.post(
        "/batch",
        data={"file": files, "csrf": csrf_of(form)},
        content_type="multipart/form-data",
    ) as res:
        assert res.status_code == 303
        batch_url = res.headers["Location"].split("?")[0]
    assert batch_url.startswith("/batch/")

    deadline = time.monotonic() + 120
    while 'http-equiv="refresh"' in (html := page(client, batch_url)):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert "<progress" in html
    assert "2 / 2" in html
    assert "&lt;b&gt;flyer&lt;/b&gt;.png" in html  # a file name is text, never markup
    assert "<b>flyer" not in html
    report_links = re.findall(r'href="(/reports/[0-9a-f]+)[^"]*"', html)
    assert len(report_links) == 2
    assert "authentic" in page(client, report_links[0])
    csv_text = page(client, f"{batch_url}/results.csv")
    assert csv_text.splitlines()[1].startswith("ballot.jpg,")
    assert len(page(client, f"{batch_url}/results.jsonl").splitlines()) == 2
    with client.get(f"{batch_url}/results.exe") as res:
        assert res.status_code == 404


def test_batch_page_errors_are_pages(app: Flask, client: FlaskClient) -> None:
    csrf = csrf_of(page(client, "/batch"))
    with client.post("/batch", data={"csrf": csrf}, content_type="multipart/form-data") as res:
        assert res.status_code == 400
        assert res.mimetype == "text/html"
    with client.get("/batch/0123") as res:
        assert res.status_code == 404
        assert res.mimetype == "text/html"
    with client.post(
        "/batch",
        data={"file": (io.BytesIO(b"x"), "a.jpg")},
        content_type="multipart/form-data",
    ) as res:
        assert res.status_code == 400  # no CSRF token


def test_banks_page_creates_adds_and_exports(app: Flask, client: FlaskClient) -> None:
    html = page(client, "/banks?lang=ja")
    assert "バンクはまだありません" in html
    csrf = csrf_of(html)
    with client.post(
        "/banks",
        data={"csrf": csrf, "name": "official", "label": "authentic", "note": "<i>press</i>"},
    ) as res:
        html = res.get_data(as_text=True)
        assert res.status_code == 200
    assert "&lt;i&gt;press&lt;/i&gt;" in html
    with client.post(
        "/banks/entries",
        data={
            "csrf": csrf,
            "bank": "official",
            "file": [
                (io.BytesIO(sample("camera_capture.jpg").read_bytes()), "poster.jpg"),
                (io.BytesIO(b"nope"), "notes.txt"),
            ],
        },
        content_type="multipart/form-data",
    ) as res:
        html = res.get_data(as_text=True)
    assert "1 entries added to official" in html
    assert "notes.txt" in html
    assert "poster.jpg" in page(client, "/banks/official.csv")
    with client.post("/banks", data={"csrf": csrf, "name": "../x", "label": "authentic"}) as res:
        assert res.status_code == 400
        assert res.mimetype == "text/html"


def test_pages_ask_for_a_key_when_keys_are_required(tmp_path: Path) -> None:
    app = create_app({"data_dir": str(tmp_path), "api_keys": "required"})
    try:
        store: Store = app.extensions["shingan"].store
        key = store.keys.create_key("desk")
        client = app.test_client()
        with client.get("/batch?lang=en") as res:
            assert res.status_code == 303
            assert res.headers["Location"].startswith("/signin?next=/batch")
        form = page(client, "/signin?next=/batch")
        with client.post(
            "/signin", data={"csrf": csrf_of(form), "key": "shg_wrong", "next": "/batch"}
        ) as res:
            assert res.status_code == 401
            assert "unknown or has been revoked" in res.get_data(as_text=True)
        with client.post(
            "/signin",
            data={"csrf": csrf_of(form), "key": key, "next": "https://evil.example/"},
        ) as res:
            assert res.status_code == 303
            assert res.headers["Location"] == "/"  # never off-site
        assert "Signed in as desk" in page(client, "/batch")
        store.keys.revoke_key("desk")
        with client.get("/batch") as res:
            assert res.status_code == 303  # revocation ends the session at once
        assert page(client, "/healthz")
    finally:
        app.extensions["shingan"].runner.stop()
