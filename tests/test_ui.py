"""The fact-checker's page through the Flask client: form, CSRF, escaping, CSP, languages."""

from __future__ import annotations

import hashlib
import io
import re
import time
from pathlib import Path
from typing import Any

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
    assert 'data-label="authentic">Signed by a trusted source, not altered since</h1>' in html
    assert "Shingan Test Signer ES256" in html
    assert "SHA-256" in html
    assert "data:application/json;base64," in html  # JSON export
    assert "Error level" in html  # forensic maps
    assert "<figcaption>The file you gave</figcaption>" in html
    banner = html[html.index('<section class="banner') : html.index("</section>")]
    assert "detector score" not in banner  # no detector decided: no score in the banner
    assert "Printable one-page report" in html
    assert "ClaimReview" in html


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


def test_after_an_integrity_failure_the_given_file_is_beside_the_signed_one(
    client: FlaskClient,
) -> None:
    html = upload(client, sample("tampered.jpg").read_bytes(), "t.jpg").get_data(as_text=True)
    assert ">Altered after it was signed</h1>" in html
    given = html.index("<figcaption>The file you gave</figcaption>")
    signed = html.index("<figcaption>What was signed (the Content Credentials")
    assert given < signed < html.index('id="reasons-h"')  # above the reasons, side by side


def test_an_untrusted_signer_is_not_a_failure(tmp_path: Path) -> None:
    from service.web import create_app

    app = create_app({"data_dir": str(tmp_path / "data")})  # no trust anchors
    try:
        c = app.test_client()
        html = upload(c, sample("camera_capture.jpg").read_bytes(), "c.jpg").get_data(as_text=True)
    finally:
        app.extensions["shingan"].runner.stop()
    assert ">Cannot tell</h1>" in html
    assert "signer not on your trust list" in html
    assert "Validation failures" not in html  # untrusted is the only failure: not shown as one
    assert "signingCredential.untrusted" not in html


def finished_job(client: FlaskClient, resp: Any, timeout: float = 120) -> str:
    """Follow a video upload's job page until it shows the report."""
    assert resp.status_code == 303
    url = resp.headers["Location"]
    assert "/jobs/" in url
    deadline = time.monotonic() + timeout
    while True:
        html = client.get(url).get_data(as_text=True)
        if 'id="verdict-h"' in html:
            return html
        assert 'http-equiv="refresh"' in html  # still working: the page refreshes itself
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_video_becomes_a_job_with_a_url_to_come_back_to(client: FlaskClient) -> None:
    resp = upload(client, sample("signed_video.mp4").read_bytes(), "v.mp4")
    html = finished_job(client, resp)
    assert "<figcaption>The file you gave (its first frame)</figcaption>" in html
    store = client.application.extensions["shingan"].store
    verified = [e for e in store.reports.audit() if e.action == "verify"]
    assert verified[0].actor.startswith("web:")  # audited as the page's direct uploads are


def test_a_job_can_be_cancelled_from_its_page(client: FlaskClient) -> None:
    resp = upload(client, sample("signed_video.mp4").read_bytes(), "v.mp4")
    url = resp.headers["Location"]
    job_id = url.split("/jobs/")[1].split("?")[0]
    cancel = client.post(
        f"/jobs/{job_id}/cancel", data={"csrf": token(client), "lang": "en"}
    )  # a form body: the gate must let it through
    assert cancel.status_code == 303
    assert cancel.headers["Location"].startswith(f"/jobs/{job_id}")
    forged = client.post(f"/jobs/{job_id}/cancel", data={"csrf": "forged"})
    assert forged.status_code == 400


def test_a_video_report_has_frames_an_axis_and_a_folded_table(client: FlaskClient) -> None:
    resp = upload(client, sample("signed_video.mp4").read_bytes(), "v.mp4")
    html = finished_job(client, resp)
    assert html.count('<li><img src="data:image/jpeg;base64,') >= 2  # the frame strip
    assert '<text class="tick"' in html
    assert '<details class="frames-table">' in html


def test_the_printable_report_and_the_claim_review_draft(client: FlaskClient) -> None:
    import base64
    import json

    html = upload(client, sample("tampered.jpg").read_bytes(), "t.jpg").get_data(as_text=True)
    found = re.search(r'href="(/reports/([0-9a-f]+)/print\?lang=en)"', html)
    assert found
    printed = client.get(found.group(1)).get_data(as_text=True)
    sha = hashlib.sha256(sample("tampered.jpg").read_bytes()).hexdigest()
    assert sha in printed
    assert "Altered after it was signed" in printed
    assert "assertion.dataHash.mismatch" in printed  # the evidence
    assert "shingan " in printed  # versions
    href = re.search(
        r'download="claimreview-[0-9a-f]+\.jsonld" href="data:application/json;base64,([^"]+)"',
        html,
    )
    assert href
    draft = json.loads(base64.b64decode(href.group(1)))
    assert draft["@type"] == "ClaimReview"
    assert draft["itemReviewed"]["appearance"][0]["sha256"] == sha
    assert draft["claimReviewed"] == ""  # the person's to write
    assert draft["reviewBody"].startswith("Altered after it was signed.")


def visible_text(html: str) -> str:
    """The page's text as people see it; elements marked lang="en" (data from models and files,
    such as detector notes) are left out."""
    from html.parser import HTMLParser

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []
            self.skip: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if self.skip or tag in ("script", "style") or ("lang", "en") in attrs:
                self.skip.append(tag)

        def handle_endtag(self, tag: str) -> None:
            if self.skip and self.skip[-1] == tag:
                self.skip.pop()

        def handle_data(self, data: str) -> None:
            if not self.skip:
                self.parts.append(data)

    parser = Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def test_no_english_ui_string_remains_on_a_japanese_report(client: FlaskClient) -> None:
    from service.messages import PAGE_TEXT

    english = {
        v for k, v in PAGE_TEXT["en"].items() if v != PAGE_TEXT["ja"][k] and len(v.split()) >= 2
    }
    enums = re.compile(  # whole words: model names such as faces-mtcnn are data
        r"(?<![\w-])(authentic|ai_generated|manipulated|inconclusive|supports|contradicts|"
        r"neutral|trusted|absent|confidence|decided by|failure|sha256|bytes|faces)(?![\w-])"
    )
    for url in ("/?lang=ja", "/batch?lang=ja", "/banks?lang=ja"):
        text = visible_text(client.get(url).get_data(as_text=True))
        assert not [e for e in english if e in text], url
    for name in ("tampered.jpg", "camera_capture.jpg", "signed_video.mp4", "ai_metadata.png"):
        resp = upload(client, sample(name).read_bytes(), name, lang="ja")
        html = (
            finished_job(client, resp) if resp.status_code == 303 else resp.get_data(as_text=True)
        )
        text = visible_text(html).replace(name, "")
        left = [e for e in english if e in text]
        assert not left, (name, left)
        assert not enums.findall(text), (name, enums.findall(text))


def test_errors_on_japanese_pages_are_in_japanese(client: FlaskClient) -> None:
    junk = upload(client, b"just some text", "notes.txt", lang="ja")
    assert junk.status_code == 415
    assert "真贋が読み取れる画像・動画・音声の形式ではありません" in junk.get_data(as_text=True)
    expired = client.post(
        "/report",
        data={"file": (io.BytesIO(b"x"), "a.jpg"), "csrf": "wrong", "lang": "ja"},
        content_type="multipart/form-data",
    )
    assert expired.status_code == 400
    assert "フォームの有効期限が切れた" in expired.get_data(as_text=True)
    missing = client.get("/reports/" + "0" * 32 + "?lang=ja")
    assert missing.status_code == 404
    assert "見つかりません" in missing.get_data(as_text=True)
    english = upload(client, b"just some text", "notes.txt").get_data(as_text=True)
    assert "do not match any supported image, video or audio format" in english  # precise


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
