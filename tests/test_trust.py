from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from provenance.defaults import C2PA_SIGNER_EKUS
from provenance.trust import (
    TrustConfigError,
    build_trust,
    load_certificates,
    parse_eku_list,
)
from tests.conftest import CA


def test_load_pem_file_and_directory(tmp_path: Path) -> None:
    pem, infos = load_certificates([CA / "root.pem"])
    assert pem.count("BEGIN CERTIFICATE") == 1
    assert "Shingan Test Root CA" in infos[0].subject
    d = tmp_path / "anchors"
    d.mkdir()
    (d / "a.pem").write_bytes((CA / "root.pem").read_bytes())
    (d / "b.crt").write_bytes((CA / "intermediate.pem").read_bytes())
    (d / "ignored.txt").write_text("not a cert")
    pem, infos = load_certificates([d])
    assert len(infos) == 2


def test_der_certificates_are_accepted(tmp_path: Path) -> None:
    cert = x509.load_pem_x509_certificate((CA / "root.pem").read_bytes())
    der = tmp_path / "root.der"
    der.write_bytes(cert.public_bytes(Encoding.DER))
    pem, infos = load_certificates([der])
    assert "BEGIN CERTIFICATE" in pem
    assert infos[0].sha256 == cert.fingerprint(cert.signature_hash_algorithm).hex()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), (b"garbage", "not a PEM or DER"), (b"", "not a PEM or DER")],
)
def test_bad_trust_files_give_clear_errors(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "anchor.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(TrustConfigError, match=message):
        build_trust(anchors=[path])


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TrustConfigError, match=r"no \.pem"):
        load_certificates([tmp_path])


def test_eku_list_parsing_accepts_store_cfg_format() -> None:
    text = "//id-kp-emailProtection \n1.3.6.1.5.5.7.3.4\n# comment\n1.3.6.1.5.5.7.3.36, 1.2.3\n"
    assert parse_eku_list(text) == ("1.3.6.1.5.5.7.3.4", "1.3.6.1.5.5.7.3.36", "1.2.3")
    with pytest.raises(TrustConfigError):
        parse_eku_list("emailProtection")


def test_settings_without_anchors_have_no_trust_anchors() -> None:
    config = build_trust()
    settings = config.settings()
    assert not config.has_anchors
    assert "trust_anchors" not in settings.get("trust", {})
    assert settings["verify"]["remote_manifest_fetch"] is False
    assert settings["verify"]["ocsp_fetch"] is False
    assert settings["trust"]["trust_config"].split("\n") == list(C2PA_SIGNER_EKUS)


def test_sdk_eku_default_leaves_trust_config_out() -> None:
    settings = build_trust(allowed_ekus=None).settings()
    assert "trust" not in settings


def test_fingerprint_distinguishes_configurations() -> None:
    a = build_trust()
    b = build_trust(anchors=[CA / "root.pem"])
    c = build_trust(remote_manifest_fetch=True)
    assert len({a.fingerprint(), b.fingerprint(), c.fingerprint()}) == 3
    assert a.fingerprint() == build_trust().fingerprint()
