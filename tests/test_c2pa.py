"""C2PA verification on the project's own samples, plus hostile and remote-manifest inputs."""

from __future__ import annotations

import io
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from provenance.c2pa import C2paFinding, classify_code, verify_c2pa
from provenance.trust import TrustConfig, build_trust
from samples.make_samples import IPTC, draw_generated, encode, manifest, sign
from tests.conftest import CA, sample, shared_path


def check(path: Path, trust: TrustConfig, mime: str | None = None, **kw: Any) -> C2paFinding:
    from provenance.media import open_media

    media = open_media(path)
    with path.open("rb") as fh:
        return verify_c2pa(fh, mime or media.mime, trust, **kw)


@pytest.mark.parametrize(
    ("name", "without", "with_ca"),
    [
        ("camera_capture.jpg", "valid", "trusted"),
        ("ai_generated.png", "valid", "trusted"),
        ("composite_ai_ingredient.jpg", "valid", "trusted"),
        ("signed_video.mp4", "valid", "trusted"),
        ("tampered.jpg", "invalid", "invalid"),
        ("unsigned.jpg", "absent", "absent"),
    ],
)
def test_sample_states(
    name: str, without: str, with_ca: str, no_anchors: TrustConfig, test_ca_trust: TrustConfig
) -> None:
    assert check(sample(name), no_anchors).state == without
    assert check(sample(name), test_ca_trust).state == with_ca


def test_without_anchors_never_trusted_even_with_sdk_ekus() -> None:
    finding = check(sample("camera_capture.jpg"), build_trust(allowed_ekus=None))
    assert finding.state == "valid"
    assert "signingCredential.untrusted" in finding.codes.failure


def test_camera_capture_details(test_ca_trust: TrustConfig) -> None:
    f = check(sample("camera_capture.jpg"), test_ca_trust)
    assert f.signer is not None
    assert f.signer.common_name == "Shingan Test Signer ES256"
    assert f.signer.organization == "Shingan Test CA - NOT FOR PRODUCTION"
    assert f.signer.issuer == "Shingan Test Intermediate CA"
    assert f.signer.algorithm is not None
    assert f.signer.algorithm.lower() == "es256"
    assert f.title == "camera_capture.jpg"
    assert f.claim_generator is not None
    assert "Shingan sample maker" in f.claim_generator
    assert [a.action for a in f.actions] == ["c2pa.created"]
    assert f.capture_declared
    assert not f.ai_declared
    assert f.codes.failure == ()
    assert "claimSignature.validated" in f.codes.success
    assert "signingCredential.trusted" in f.codes.success
    assert f.timestamp is None  # signed offline, without a time-stamp authority
    assert f.thumbnail is None  # only on request


def test_ai_declaration_in_active_manifest(no_anchors: TrustConfig) -> None:
    f = check(sample("ai_generated.png"), no_anchors)
    assert f.ai_declared
    assert f.digital_source_type == "trainedAlgorithmicMedia"
    assert f.ai_declarations[0].where.startswith("active manifest")
    assert f.signer is not None
    assert f.signer.common_name == "Shingan Test Signer PS256"


def test_ai_declaration_found_in_ingredient_tree(no_anchors: TrustConfig) -> None:
    f = check(sample("composite_ai_ingredient.jpg"), no_anchors)
    assert f.ai_declared
    assert any("ai_generated.png" in d.where for d in f.ai_declarations)
    by_title = {i.title: i for i in f.ingredients}
    assert by_title["ai_generated.png"].ai_declared
    assert by_title["ai_generated.png"].has_manifest
    assert by_title["ai_generated.png"].relationship == "componentOf"
    assert not by_title["camera_capture.jpg"].ai_declared
    assert by_title["camera_capture.jpg"].relationship == "parentOf"
    assert by_title["camera_capture.jpg"].digital_source_type == "digitalCapture"


def test_tampered_is_integrity_failure(test_ca_trust: TrustConfig) -> None:
    f = check(sample("tampered.jpg"), test_ca_trust)
    assert f.state == "invalid"
    assert f.integrity_failures == ("assertion.dataHash.mismatch",)
    assert f.credential_failures == ()


def test_thumbnails_on_request(no_anchors: TrustConfig) -> None:
    f = check(sample("composite_ai_ingredient.jpg"), no_anchors, include_thumbnails=True)
    assert f.thumbnail is not None
    assert f.thumbnail.startswith("data:image/")
    assert all(i.thumbnail and i.thumbnail.startswith("data:image/") for i in f.ingredients)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("assertion.dataHash.mismatch", "integrity"),
        ("assertion.bmffHash.mismatch", "integrity"),
        ("assertion.hashedURI.mismatch", "integrity"),
        ("claimSignature.mismatch", "integrity"),
        ("signingCredential.untrusted", "credential"),
        ("signingCredential.expired", "credential"),
        ("signingCredential.invalid", "credential"),
        ("timeStamp.mismatch", "credential"),
        ("ingredient.manifest.missing", "other"),
        ("cawg.ica.did_unavailable", "other"),
    ],
)
def test_failure_classification(code: str, kind: str) -> None:
    assert classify_code(code) == kind


# --- hostile input ------------------------------------------------------------------------


def test_truncated_and_corrupted_signed_files_never_raise(no_anchors: TrustConfig) -> None:
    data = sample("camera_capture.jpg").read_bytes()
    rng = random.Random(7)
    seen = set()
    cuts = [10, 100, 1000, 5000, 20000, len(data) // 2, len(data) - 10]
    for cut in cuts:
        f = verify_c2pa(io.BytesIO(data[:cut]), "image/jpeg", no_anchors)
        seen.add(f.state)
    for _ in range(40):
        buf = bytearray(data)
        for _ in range(8):
            pos = rng.randrange(2, 40000)
            buf[pos] = rng.randrange(256)
        f = verify_c2pa(io.BytesIO(bytes(buf)), "image/jpeg", no_anchors)
        seen.add(f.state)
        assert f.state in {"absent", "invalid", "valid", "error"}
    assert seen <= {"absent", "invalid", "valid", "error"}
    assert "error" in seen or "invalid" in seen


def test_garbage_with_jpeg_magic_is_not_a_crash(no_anchors: TrustConfig) -> None:
    f = verify_c2pa(io.BytesIO(b"\xff\xd8\xff" + b"\x00" * 500), "image/jpeg", no_anchors)
    assert f.state in {"absent", "error"}


def test_format_that_cannot_carry_c2pa_is_absent(no_anchors: TrustConfig) -> None:
    f = verify_c2pa(io.BytesIO(b"BM" + b"\x00" * 100), "image/bmp", no_anchors)
    assert f.state == "absent"
    assert f.error is not None
    assert "image/bmp" in f.error


# --- threads ------------------------------------------------------------------------------


def test_parallel_verification_in_threads(test_ca_trust: TrustConfig) -> None:
    names = ["camera_capture.jpg", "ai_generated.png", "tampered.jpg", "unsigned.jpg"] * 6
    expected = {n: check(sample(n), test_ca_trust).state for n in set(names)}
    thread_ids: set[int] = set()

    def work(name: str) -> tuple[str, str]:
        thread_ids.add(threading.get_ident())
        return name, check(sample(name), test_ca_trust).state

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, names))
    assert all(state == expected[name] for name, state in results)
    assert len(thread_ids) > 1


# --- remote manifests ---------------------------------------------------------------------


class _CountingServer:
    """A local HTTP server that serves one manifest and counts every request."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.body = b""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                body = outer.body
                self.send_response(200)
                self.send_header("Content-Type", "application/c2pa")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def remote_manifest_png() -> Iterator[tuple[bytes, _CountingServer]]:
    """A PNG whose manifest lives only at a URL on a local server."""
    import c2pa

    from samples.make_samples import _context, _signer

    raw = encode(draw_generated(64, 64, seed=5), "PNG")
    server = _CountingServer()
    url = f"http://127.0.0.1:{server.port}/manifest.c2pa"
    definition = manifest(
        "remote.png",
        [{"action": "c2pa.created", "digitalSourceType": IPTC + "trainedAlgorithmicMedia"}],
        "image/png",
    )
    with c2pa.Builder(definition, _context()) as builder:
        builder.set_no_embed()
        builder.set_remote_url(url)
        dest = io.BytesIO()
        with _signer("signer-es256") as signer:
            server.body = builder.sign(signer, "image/png", io.BytesIO(raw), dest)
    try:
        yield dest.getvalue(), server
    finally:
        server.close()


def test_remote_manifest_is_not_fetched_by_default(
    remote_manifest_png: tuple[bytes, _CountingServer], no_anchors: TrustConfig
) -> None:
    asset, server = remote_manifest_png
    f = verify_c2pa(io.BytesIO(asset), "image/png", no_anchors)
    assert server.requests == []
    assert f.state == "error"
    assert f.remote_url is not None
    assert f"127.0.0.1:{server.port}" in f.remote_url
    assert f.error is not None
    assert "not fetched" in f.error


def test_remote_manifest_fetch_when_configured_does_reach_server(
    remote_manifest_png: tuple[bytes, _CountingServer],
) -> None:
    """The control for the test above: the file really does point at the server."""
    asset, server = remote_manifest_png
    trust = build_trust(anchors=[CA / "root.pem"], remote_manifest_fetch=True)
    f = verify_c2pa(io.BytesIO(asset), "image/png", trust)
    assert server.requests == ["/manifest.c2pa"]
    assert f.state == "trusted"
    assert f.ai_declared


def test_signing_helper_roundtrip(no_anchors: TrustConfig) -> None:
    """The samples' signing helper makes what verification expects (PS256 signer)."""
    raw = encode(draw_generated(48, 48, seed=9), "PNG")
    signed = sign(
        raw,
        "image/png",
        manifest(
            "t.png",
            [{"action": "c2pa.created", "digitalSourceType": IPTC + "algorithmicMedia"}],
            "image/png",
        ),
        "signer-ps256",
    )
    f = verify_c2pa(io.BytesIO(signed), "image/png", no_anchors)
    assert (f.state, f.digital_source_type) == ("valid", "algorithmicMedia")


# --- trust configuration pieces -------------------------------------------------------------


def test_user_anchors_make_a_signer_trusted() -> None:
    trust = build_trust(user_anchors=[CA / "root.pem"])
    assert check(sample("camera_capture.jpg"), trust).state == "trusted"


def _document_signing_only_ca(folder: Path) -> Path:
    """A copy of the test CA's intermediate issuing a leaf with documentSigning as its only EKU."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from samples.make_samples import EKU_DOCUMENT_SIGNING, _pem_cert, _pem_key, make_cert

    inter = x509.load_pem_x509_certificate((CA / "intermediate.pem").read_bytes())
    inter_key = serialization.load_pem_private_key((CA / "intermediate.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = make_cert(
        "Doc-signing-only signer",
        key.public_key(),
        inter,
        inter_key,  # type: ignore[arg-type]
        ca=False,
        years=5,
        ekus=[EKU_DOCUMENT_SIGNING],
    )
    (folder / "signer-es256.pem").write_bytes(_pem_cert(leaf) + _pem_cert(inter))
    (folder / "signer-es256.key").write_bytes(_pem_key(key))
    return folder


def test_allowed_ekus_decide_whether_a_document_signing_signer_is_accepted(tmp_path: Path) -> None:
    ca_dir = _document_signing_only_ca(tmp_path)
    signed = sign(
        encode(draw_generated(48, 48, seed=3), "PNG"),
        "image/png",
        manifest(
            "doc.png",
            [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"}],
            "image/png",
        ),
        "signer-es256",
        ca_dir=ca_dir,
    )
    # The SDK's built-in list lacks documentSigning: a credential problem, not tampering.
    sdk = verify_c2pa(
        io.BytesIO(signed), "image/png", build_trust(anchors=[CA / "root.pem"], allowed_ekus=None)
    )
    assert sdk.state == "invalid"
    assert "signingCredential.invalid" in sdk.credential_failures
    assert sdk.integrity_failures == ()
    # Shingan's default accepts the EKUs the C2PA specification lists for claim signers.
    spec = verify_c2pa(io.BytesIO(signed), "image/png", build_trust(anchors=[CA / "root.pem"]))
    assert spec.state == "trusted"


def test_an_ingredients_own_recorded_failures_are_in_the_tree(no_anchors: TrustConfig) -> None:
    """c2pa-rs's CIE-sig-CA.jpg: its ingredient E-sig-CA.jpg had a broken claim signature when it
    was taken in. The SDK's live validation says only that the signer is untrusted; the failure
    is recorded in the ingredient's own validation_status."""
    path = shared_path("c2pa", "rs", "CIE-sig-CA.jpg")
    with path.open("rb") as fh:
        f = verify_c2pa(fh, "image/jpeg", no_anchors)
    [ingredient] = f.ingredients
    assert ingredient.title == "E-sig-CA.jpg"
    assert "claimSignature.mismatch" in ingredient.failures
    assert "claimSignature.mismatch" in f.ingredient_failures
    assert "ingr:claimSignature.mismatch" not in f.codes.failure  # the SDK's codes, as it gave them
    assert (f.ai_declared, f.digital_source_type) == (False, "algorithmicMedia")
