"""The fact-checker's page through the Flask client: form, CSRF, escaping, CSP, languages."""

from __future__ import annotations

import io
import re
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from samples.make_samples import IPTC, draw_scene, encode, manifest, sign
from tests.conftest import sample


def token(client: FlaskClient, lang: str = "en") -> str:
    page = client.get(f"/?lang={lang}").get_data(as_text=True)
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found.group(1)


def upload(client: FlaskClient, data: bytes, name: str, lang: str = "en", csrf: str | None = None):
    return client.post(
        "/report",
        data={"file": (io.BytesIO(data), name), "csrf": csrf or token(client, lang), "lang": lang},
        content_type="multipart/form-data",
    )


def test_index_page_has_a_form_and_a_strict_policy(client: FlaskClient) -> None:
    resp = client.get("/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'enctype="multipart/form-data"' in html
    assert '<label for="file"' in html
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "<script>" not in html  # only external scripts from the app itself
    assert '<script src="/static/upload.js" defer></script>' in html
    assert "https://" not in html  # no external assets


def test_report_page_for_a_trusted_sample(client: FlaskClient) -> None:
    resp = upload(client, sample("camera_capture.jpg").read_bytes(), "camera_capture.jpg")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "authentic" in html
    assert "Shingan Test Signer ES256" in html
    assert "sha256" in html
    assert "data:application/json;base64," in html  # JSON export
    assert "Error level" in html  # forensic maps


def test_composite_shows_the_ingredient_tree_with_thumbnails(client: FlaskClient) -> None:
    html = upload(client, sample("composite_ai_ingredient.jpg").read_bytes(), "c.jpg").get_data(
        as_text=True
    )
    assert "ai_generated.png" in html
    assert 'class="thumb"' in html
    assert "AI: trainedAlgorithmicMedia" in html


def test_strings_from_files_are_escaped(client: FlaskClient, tmp_path: Path) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    signed = sign(
        encode(draw_scene(320, 240, seed=6), "JPEG"),
        "image/jpeg",
        manifest(
            evil,
            [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"}],
            "image/jpeg",
        ),
        "signer-es256",
    )
    html = upload(client, signed, "<b>name</b>.jpg").get_data(as_text=True)
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert" in html
    assert "&lt;b&gt;name&lt;/b&gt;.jpg" in html


def test_csrf_is_required(client: FlaskClient) -> None:
    resp = upload(client, sample("unsigned.jpg").read_bytes(), "u.jpg", csrf="forged")
    assert resp.status_code == 400
    assert resp.mimetype == "text/html"
    assert "expired" in resp.get_data(as_text=True)


def test_bad_file_gets_a_page_not_a_crash(client: FlaskClient) -> None:
    resp = upload(client, b"not an image" * 10, "x.jpg")
    assert resp.status_code == 415
    assert 'role="alert"' in resp.get_data(as_text=True)


def test_japanese_page_and_report(client: FlaskClient) -> None:
    index = client.get("/?lang=ja").get_data(as_text=True)
    assert '<html lang="ja">' in index
    assert "ファイルを確認" in index
    html = upload(client, sample("tampered.jpg").read_bytes(), "t.jpg", lang="ja").get_data(
        as_text=True
    )
    assert "このファイルは署名後に変更されています" in html


def test_model_card_page(app: Flask, client: FlaskClient) -> None:
    names = [d.card.name for d in app.extensions["shingan"].options.detectors.detectors]
    assert "ai-clip" in names
    assert "synthetic-patch" not in names  # superseded: default = false
    html = client.get("/models/ai-clip").get_data(as_text=True)
    assert "failure modes" in html
    assert "clean_auc" in html
    assert client.get("/models/nope").status_code == 404


def test_static_stylesheet_is_served(client: FlaskClient) -> None:
    with client.get("/static/shingan.css") as resp:
        assert resp.status_code == 200
        assert "@media print" in resp.get_data(as_text=True)


def test_page_uploads_follow_media_retention_as_the_api_does(tmp_path: Path) -> None:
    """The page and the API share one verify flow (service/app/verify.py); the page's own copy
    of it used to ignore media_retention_days."""
    import hashlib

    from service.web import create_app

    app = create_app({"data_dir": str(tmp_path / "data"), "media_retention_days": 1})
    client = app.test_client()
    data = sample("unsigned.jpg").read_bytes()
    resp = upload(client, data, "unsigned.jpg")
    assert resp.status_code == 200
    st = app.extensions["shingan"]
    kept = st.media.path(hashlib.sha256(data).hexdigest())
    assert kept.read_bytes() == data
    app.extensions["shingan"].runner.stop()
