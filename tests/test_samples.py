"""The samples script reproduces the committed samples' behaviour from the committed test CA."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography import x509

from provenance.trust import build_trust
from samples.make_samples import make_media
from service.pipeline import AnalyzeOptions, analyze
from tests.conftest import CA, SAMPLES

EXPECTED = {
    "camera_capture.jpg": ("trusted", "authentic"),
    "ai_generated.png": ("trusted", "ai_generated"),
    "composite_ai_ingredient.jpg": ("trusted", "ai_generated"),
    "tampered.jpg": ("invalid", "manipulated"),
    "unsigned.jpg": ("absent", "inconclusive"),
    "signed_video.mp4": ("trusted", "authentic"),
    "sdxl_watermarked.png": ("absent", "ai_generated"),
    "ai_metadata.png": ("absent", "ai_generated"),
}


def _outcomes(folder: Path) -> dict[str, tuple[str, str]]:
    options = AnalyzeOptions(trust=build_trust(anchors=[CA / "root.pem"]))
    out = {}
    for name in EXPECTED:
        report = analyze(folder / name, options).to_dict()
        out[name] = (report["provenance"]["c2pa"]["state"], report["verdict"]["label"])
    return out


def test_committed_samples() -> None:
    assert _outcomes(SAMPLES) == EXPECTED
    listed = json.loads((SAMPLES / "SAMPLES.json").read_text())
    assert set(listed) == set(EXPECTED)


def test_script_regenerates_equivalent_samples(tmp_path: Path) -> None:
    made = make_media(tmp_path)
    assert set(made) == set(EXPECTED)
    assert _outcomes(tmp_path) == EXPECTED
    assert all((tmp_path / n).stat().st_size < 400_000 for n in EXPECTED)


def test_test_ca_profile() -> None:
    root = x509.load_pem_x509_certificate((CA / "root.pem").read_bytes())
    chain = x509.load_pem_x509_certificates((CA / "signer-ps256.pem").read_bytes())
    leaf, inter = chain
    assert inter.issuer == root.subject
    assert leaf.issuer == inter.subject
    assert "NOT FOR PRODUCTION" in leaf.subject.rfc4514_string()
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36") in eku
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
