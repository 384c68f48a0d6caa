"""The HTTP API through Flask's test client."""

from __future__ import annotations

import io
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi

from service.web import create_app
from service.web.openapi import UndocumentedRoute, components, openapi_document
from tests.conftest import CA, sample


def report_validator() -> Draft202012Validator:
    schema = {"$ref": "#/components/schemas/Report", "components": {"schemas": components()}}
    return Draft202012Validator(schema)


def error_validator() -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": "#/components/schemas/Error", "components": {"schemas": components()}}
    )


def post_file(client: FlaskClient, path: Path, query: str = "") -> Any:
    with path.open("rb") as fh:
        return client.post(
            f"/v1/verify{query}",
            data={"file": (fh, path.name)},
            content_type="multipart/form-data",
        )


def assert_error(resp: Any, status: int, code: str) -> None:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    error_validator().validate(body)
    assert body["error"]["code"] == code
    assert body["error"]["message"]


@pytest.mark.parametrize(
    ("name", "label", "state"),
    [
        ("camera_capture.jpg", "authentic", "trusted"),
        ("ai_generated.png", "ai_generated", "trusted"),
        ("composite_ai_ingredient.jpg", "ai_generated", "trusted"),
        ("tampered.jpg", "manipulated", "invalid"),
        ("unsigned.jpg", "inconclusive", "absent"),
        ("signed_video.mp4", "authentic", "trusted"),
        ("sdxl_watermarked.png", "ai_generated", "absent"),
        ("ai_metadata.png", "ai_generated", "absent"),
    ],
)
def test_verify_multipart_samples(client: FlaskClient, name: str, label: str, state: str) -> None:
    resp = post_file(client, sample(name))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    report_validator().validate(body)
    assert body["schema"] == "shingan.report/1"
    assert body["verdict"]["label"] == label
    assert body["provenance"]["c2pa"]["state"] == state
    assert body["media"]["filename"] == name
    assert resp.headers["X-Shingan-Report-Id"] == body["id"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-store"


def test_verify_raw_body_type_from_bytes(client: FlaskClient) -> None:
    data = sample("tampered.jpg").read_bytes()
    resp = client.post("/v1/verify?filename=x.txt", data=data, content_type="text/plain")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["media"]["mime"] == "image/jpeg"
    assert body["verdict"]["label"] == "manipulated"
    assert "assertion.dataHash.mismatch" in body["provenance"]["c2pa"]["codes"]["failure"]


def test_thumbnails_on_request(client: FlaskClient) -> None:
    plain = post_file(client, sample("composite_ai_ingredient.jpg")).get_json()
    assert plain["provenance"]["c2pa"]["thumbnail"] is None
    rich = post_file(client, sample("composite_ai_ingredient.jpg"), "?thumbnails=1").get_json()
    c2pa = rich["provenance"]["c2pa"]
    assert c2pa["thumbnail"].startswith("data:image/")
    assert all(i["thumbnail"].startswith("data:image/") for i in c2pa["ingredients"])


def test_missing_file_field(client: FlaskClient) -> None:
    resp = client.post("/v1/verify", data={"other": "x"}, content_type="multipart/form-data")
    assert_error(resp, 400, "missing_file")


def test_empty_body(client: FlaskClient) -> None:
    assert_error(client.post("/v1/verify", data=b""), 400, "missing_file")


def test_empty_multipart_file(client: FlaskClient) -> None:
    resp = client.post(
        "/v1/verify",
        data={"file": (io.BytesIO(b""), "empty.jpg")},
        content_type="multipart/form-data",
    )
    assert_error(resp, 400, "missing_file")


def test_unsupported_type(client: FlaskClient) -> None:
    resp = client.post("/v1/verify", data=b"#!/bin/sh\necho hi\n" * 20, content_type="image/jpeg")
    assert_error(resp, 415, "unsupported_media_type")


def test_corrupt_image(client: FlaskClient) -> None:
    resp = client.post("/v1/verify", data=b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    assert_error(resp, 422, "corrupt_media")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_decompression_bomb(client: FlaskClient) -> None:
    ihdr = struct.pack(">IIBBBBB", 80000, 80000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 99))
    assert_error(client.post("/v1/verify", data=png), 422, "too_many_pixels")


@pytest.fixture
def small_app(tmp_path: Path) -> Flask:
    return create_app({"data_dir": str(tmp_path / "d"), "max_upload_mb": 0.01})  # 10 KiB


class ExplodingStream(io.RawIOBase):
    """A request body that fails the test if anyone reads it."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return 0

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def readinto(self, b: Any) -> int:
        raise AssertionError("the oversized body was read")


def test_oversized_upload_refused_without_reading(small_app: Flask) -> None:
    client = small_app.test_client()
    resp = client.post(
        "/v1/verify",
        input_stream=ExplodingStream(),
        content_type="image/jpeg",
        environ_overrides={"CONTENT_LENGTH": str(50 * 1024 * 1024)},
    )
    assert_error(resp, 413, "too_large")


def test_oversized_multipart_refused(small_app: Flask) -> None:
    client = small_app.test_client()
    resp = post_file(client, sample("camera_capture.jpg"))
    assert_error(resp, 413, "too_large")


def test_oversized_stream_without_length_refused(small_app: Flask) -> None:
    """A chunked upload declares no length; the copy stops at the limit."""
    client = small_app.test_client()
    data = sample("camera_capture.jpg").read_bytes()
    resp = client.post(
        "/v1/verify",
        input_stream=io.BytesIO(data),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "image/jpeg"},
        # What a WSGI server that decodes chunked bodies (waitress) sets.
        environ_base={"wsgi.input_terminated": True},
    )
    assert_error(resp, 413, "too_large")


def test_unknown_route_and_method_are_json(client: FlaskClient) -> None:
    assert_error(client.get("/v1/nope"), 404, "not_found")
    assert_error(client.get("/v1/verify"), 405, "method_not_allowed")


def test_untrusted_strings_stay_data(client: FlaskClient) -> None:
    name = "<script>alert(1)</script><img src=x onerror=alert(2)>.jpg"
    resp = post_file_named(client, sample("unsigned.jpg"), name)
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    assert resp.get_json()["media"]["filename"] == name


def post_file_named(client: FlaskClient, path: Path, name: str) -> Any:
    with path.open("rb") as fh:
        return client.post(
            "/v1/verify", data={"file": (fh, name)}, content_type="multipart/form-data"
        )


def test_no_media_kept_after_analysis(app: Flask, client: FlaskClient) -> None:
    post_file(client, sample("camera_capture.jpg"))
    client.post("/v1/verify", data=b"garbage" * 10)
    upload_dir = app.extensions["shingan"].upload_dir
    assert list(upload_dir.iterdir()) == []


def test_openapi_document_is_valid(client: FlaskClient) -> None:
    resp = client.get("/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.get_json()
    validate_openapi(doc)
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) >= {
        "/v1/verify",
        "/v1/openapi.json",
        "/healthz",
        "/readyz",
        "/v1/batches",
        "/v1/batches/{batch_id}",
        "/v1/banks",
        "/v1/banks/{name}/entries",
        "/metrics",
    }
    # Every route the app serves under /v1 is documented, with its methods.
    served: dict[str, set[str]] = {}
    for r in client.application.url_map.iter_rules():
        if r.rule.startswith("/v1/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r.rule)
            served.setdefault(path, set()).update(m.lower() for m in r.methods or ())
    documented = {p: set(ops) for p, ops in doc["paths"].items() if p.startswith("/v1/")}
    assert documented == {p: m - {"head", "options"} for p, m in served.items()}


def test_an_undocumented_api_route_fails_the_document(tmp_path: Path) -> None:
    app = create_app({"data_dir": str(tmp_path / "data")})
    app.add_url_rule("/v1/secret", "secret", lambda: "")
    with pytest.raises(UndocumentedRoute, match="/v1/secret"):
        openapi_document(app)


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.get_json()
    assert body["status"] == "ready"
    assert body["checks"]["trust"]["anchors"] == 1
    assert body["checks"]["trust"]["remote_manifest_fetch"] is False


def test_readiness_reports_unwritable_storage(app: Flask, client: FlaskClient) -> None:
    upload_dir: Path = app.extensions["shingan"].upload_dir
    upload_dir.rmdir()
    upload_dir.write_text("now a file")  # mkstemp inside it must fail
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["checks"]["storage"]["ok"] is False


def test_create_app_refuses_bad_trust_file(tmp_path: Path) -> None:
    from service.config import ConfigError

    with pytest.raises(ConfigError, match="no such file"):
        create_app({"data_dir": str(tmp_path), "trust_anchors": [str(tmp_path / "missing.pem")]})


def test_without_anchors_nothing_is_authentic(tmp_path: Path) -> None:
    client = create_app({"data_dir": str(tmp_path)}).test_client()
    body = post_file(client, sample("camera_capture.jpg")).get_json()
    assert body["provenance"]["c2pa"]["state"] == "valid"
    assert body["verdict"]["label"] == "inconclusive"
    assert CA.is_dir()
