"""Make Shingan's own sample media and the test certificate authority that signs it.

Run ``python samples/make_samples.py`` (add ``--new-ca`` to replace the CA). Outputs, all
committed and all small:

``samples/ca/``                 test root, intermediate and two signers (ES256, PS256), with
                                their private keys. TEST MATERIAL ONLY: the keys are public, so
                                a manifest signed with them proves nothing outside tests.
``camera_capture.jpg``          signed ES256, ``c2pa.created`` with digitalSourceType
                                digitalCapture (what a C2PA camera writes)
``ai_generated.png``            signed PS256, ``c2pa.created`` with trainedAlgorithmicMedia
``composite_ai_ingredient.jpg`` signed ES256: the camera photo opened as parent and the AI
                                image placed into it as an ingredient (the AI declaration
                                lives only in the ingredient's manifest)
``tampered.jpg``                ``camera_capture.jpg`` with pixels changed after signing
``unsigned.jpg``                no manifest at all
``signed_video.mp4``            a short MP4 clip, signed ES256, digitalCapture
``sdxl_watermarked.png``        unsigned, carrying the SDXL invisible watermark (0xB3EC907BB19E),
                                embedded by Shingan's reference-identical encoder
``ai_metadata.png``             unsigned, with Automatic1111 ``parameters`` generation metadata

The pictures are drawn procedurally from a fixed seed, so no third-party media is involved.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

HERE = Path(__file__).resolve().parent
CA_DIR = HERE / "ca"

ORG = "Shingan Test CA - NOT FOR PRODUCTION"
EKU_DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
GENERATOR = {"name": "Shingan sample maker", "version": "1"}

# Reference point for certificate validity: the samples are committed and must keep verifying.
NOT_BEFORE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
ROOT_YEARS, LEAF_YEARS = 40, 30


# --- certificate authority --------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _years(n: int) -> dt.datetime:
    return NOT_BEFORE.replace(year=NOT_BEFORE.year + n)


def make_cert(
    subject: str,
    public_key: Any,
    issuer: x509.Certificate | None,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    *,
    ca: bool,
    path_length: int | None = None,
    years: int,
    ekus: Sequence[x509.ObjectIdentifier] = (
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
        EKU_DOCUMENT_SIGNING,
    ),
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(_years(years))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    if ca:
        usage = x509.KeyUsage(
            digital_signature=False,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        )
    else:
        usage = x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=False,
            crl_sign=False,
            encipher_only=False,
            decipher_only=False,
        )
        # emailProtection keeps the SDK's built-in EKU check happy; documentSigning is the
        # EKU the C2PA specification recommends for claim signers.
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    builder = builder.add_extension(usage, critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem_key(key: Any) -> bytes:
    data: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return data


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(out: Path = CA_DIR) -> None:
    """Create the test root, intermediate and ES256/PS256 signers in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    root_key = ec.generate_private_key(ec.SECP384R1())
    root = make_cert(
        "Shingan Test Root CA", root_key.public_key(), None, root_key, ca=True, years=ROOT_YEARS
    )
    inter_key = ec.generate_private_key(ec.SECP384R1())
    inter = make_cert(
        "Shingan Test Intermediate CA",
        inter_key.public_key(),
        root,
        root_key,
        ca=True,
        path_length=0,
        years=ROOT_YEARS - 1,
    )
    es_key = ec.generate_private_key(ec.SECP256R1())
    es = make_cert(
        "Shingan Test Signer ES256", es_key.public_key(), inter, inter_key, ca=False, years=30
    )
    ps_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ps = make_cert(
        "Shingan Test Signer PS256", ps_key.public_key(), inter, inter_key, ca=False, years=30
    )
    (out / "root.pem").write_bytes(_pem_cert(root))
    (out / "root.key").write_bytes(_pem_key(root_key))
    (out / "intermediate.pem").write_bytes(_pem_cert(inter))
    (out / "intermediate.key").write_bytes(_pem_key(inter_key))
    for name, cert, key in (("signer-es256", es, es_key), ("signer-ps256", ps, ps_key)):
        # The signing chain: leaf first, then the intermediate (the root stays out).
        (out / f"{name}.pem").write_bytes(_pem_cert(cert) + _pem_cert(inter))
        (out / f"{name}.key").write_bytes(_pem_key(key))


# --- pictures ------------------------------------------------------------------------------


def draw_scene(width: int, height: int, seed: int) -> np.ndarray:
    """A landscape-like picture: sky gradient, hills, a sun and sensor-like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    sky = y / height
    img[..., 0] = 90 + 100 * sky
    img[..., 1] = 140 + 70 * sky
    img[..., 2] = 235 - 40 * sky
    for i in range(3):
        phase, amp = rng.uniform(0, 6.28), rng.uniform(0.05, 0.12)
        ridge = height * (0.55 + 0.12 * i + amp * np.sin(x / width * 6.28 * (1 + i) + phase))
        mask = y > ridge
        shade = np.array([40 + 30 * i, 110 - 15 * i, 50 + 10 * i], np.float32)
        img[mask] = shade * (0.8 + 0.4 * rng.random())
    cx, cy, r = width * rng.uniform(0.6, 0.85), height * 0.25, min(width, height) * 0.08
    sun = (x - cx) ** 2 + (y - cy) ** 2 < r**2
    img[sun] = (255, 230, 150)
    img += rng.normal(0, 4.0, img.shape)  # sensor noise
    return np.clip(img, 0, 255).astype(np.uint8)


def draw_generated(width: int, height: int, seed: int) -> np.ndarray:
    """A smooth, painterly picture of the kind image generators make."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) / max(width, height)
    img = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        for _ in range(4):
            fx, fy, ph = rng.uniform(1, 6), rng.uniform(1, 6), rng.uniform(0, 6.28)
            img[..., c] += np.sin(fx * 6.28 * x + ph) * np.cos(fy * 6.28 * y + ph)
    img = (img - img.min()) / (img.max() - img.min() + 1e-6)
    out: np.ndarray = (img * 255).astype(np.uint8)
    return out


def encode(array: np.ndarray, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kw)
    return buf.getvalue()


def write_video(
    path: Path, frames: int = 20, fps: float = 10.0, size: tuple[int, int] = (320, 192)
) -> None:
    """A short MP4 (MPEG-4 Part 2, via OpenCV's bundled encoder) of a panning scene."""
    import cv2

    w, h = size
    scene = draw_scene(w * 2, h, seed=11)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write MP4 on this machine")
    try:
        for i in range(frames):
            off = int(i * (w / frames))
            frame = np.ascontiguousarray(scene[:, off : off + w, ::-1])
            writer.write(frame)
    finally:
        writer.release()


# --- signing --------------------------------------------------------------------------------


def _signer(name: str, ca_dir: Path = CA_DIR) -> Any:
    import c2pa

    alg = "es256" if name.endswith("es256") else "ps256"
    info = c2pa.C2paSignerInfo(
        alg,
        (ca_dir / f"{name}.pem").read_bytes(),
        (ca_dir / f"{name}.key").read_bytes(),
        None,  # no time-stamp authority: this must work offline
    )
    return c2pa.Signer.from_info(info)


def _context() -> Any:
    import c2pa

    # Signing settings only; remote fetching off as everywhere in Shingan.
    return c2pa.Context.from_dict(
        {
            "version": 1,
            "verify": {"remote_manifest_fetch": False, "verify_after_sign": False},
            "builder": {"thumbnail": {"enabled": True, "long_edge": 256}},
        }
    )


def sign(
    source: bytes,
    mime: str,
    manifest: dict[str, Any],
    signer_name: str,
    ingredients: Sequence[tuple[dict[str, Any], str, bytes]] = (),
    ca_dir: Path = CA_DIR,
) -> bytes:
    """Sign ``source`` with a manifest definition; returns the signed asset."""
    import c2pa

    with c2pa.Builder(manifest, _context()) as builder:
        for definition, ing_mime, data in ingredients:
            builder.add_ingredient(definition, ing_mime, io.BytesIO(data))
        dest = io.BytesIO()
        with _signer(signer_name, ca_dir) as signer:
            builder.sign(signer, mime, io.BytesIO(source), dest)
    return dest.getvalue()


def sign_sidecar(source: bytes, mime: str, manifest: dict[str, Any], signer_name: str) -> bytes:
    """Sign ``source`` without touching it; returns the sidecar manifest store (a ``.c2pa``)."""
    import c2pa

    with c2pa.Builder(manifest, _context()) as builder:
        builder.set_no_embed()
        with _signer(signer_name, CA_DIR) as signer:
            store: bytes = builder.sign(signer, mime, io.BytesIO(source), io.BytesIO())
    return store


def manifest(title: str, actions: list[dict[str, Any]], fmt: str) -> dict[str, Any]:
    return {
        "claim_generator_info": [GENERATOR],
        "title": title,
        "format": fmt,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}],
    }


IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def make_media(out: Path = HERE) -> dict[str, str]:
    """Write every sample into ``out``; returns {file: description}."""
    made: dict[str, str] = {}
    camera_raw = encode(draw_scene(640, 427, seed=1), "JPEG", quality=90)
    camera = sign(
        camera_raw,
        "image/jpeg",
        manifest(
            "camera_capture.jpg",
            [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"}],
            "image/jpeg",
        ),
        "signer-es256",
    )
    (out / "camera_capture.jpg").write_bytes(camera)
    made["camera_capture.jpg"] = "signed camera capture (ES256, digitalCapture)"

    ai_raw = encode(draw_generated(512, 512, seed=2), "PNG")
    ai = sign(
        ai_raw,
        "image/png",
        manifest(
            "ai_generated.png",
            [
                {
                    "action": "c2pa.created",
                    "digitalSourceType": IPTC + "trainedAlgorithmicMedia",
                    "softwareAgent": {"name": "Shingan sample generator", "version": "1"},
                }
            ],
            "image/png",
        ),
        "signer-ps256",
    )
    (out / "ai_generated.png").write_bytes(ai)
    made["ai_generated.png"] = "signed AI-generated image (PS256, trainedAlgorithmicMedia)"

    base = draw_scene(640, 427, seed=1)
    patch = draw_generated(160, 160, seed=2)
    base[200:360, 400:560] = patch
    composite = sign(
        encode(base, "JPEG", quality=90),
        "image/jpeg",
        manifest(
            "composite_ai_ingredient.jpg",
            [
                {"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent"]}},
                {"action": "c2pa.placed", "parameters": {"ingredientIds": ["ai"]}},
            ],
            "image/jpeg",
        ),
        "signer-es256",
        ingredients=[
            (
                {"title": "camera_capture.jpg", "relationship": "parentOf", "label": "parent"},
                "image/jpeg",
                camera,
            ),
            (
                {"title": "ai_generated.png", "relationship": "componentOf", "label": "ai"},
                "image/png",
                ai,
            ),
        ],
    )
    (out / "composite_ai_ingredient.jpg").write_bytes(composite)
    made["composite_ai_ingredient.jpg"] = "signed composite with an AI ingredient"

    (out / "tampered.jpg").write_bytes(tamper_jpeg(camera))
    made["tampered.jpg"] = "camera_capture.jpg with scan data changed after signing"

    (out / "unsigned.jpg").write_bytes(encode(draw_scene(640, 427, seed=3), "JPEG", quality=88))
    made["unsigned.jpg"] = "plain JPEG without Content Credentials"

    with tempfile.TemporaryDirectory() as tmp:
        raw_video = Path(tmp) / "clip.mp4"
        write_video(raw_video)
        video = sign(
            raw_video.read_bytes(),
            "video/mp4",
            manifest(
                "signed_video.mp4",
                [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"}],
                "video/mp4",
            ),
            "signer-es256",
        )
    (out / "signed_video.mp4").write_bytes(video)
    made["signed_video.mp4"] = "signed 2 s MP4 clip (ES256, digitalCapture)"

    from PIL.PngImagePlugin import PngInfo

    from provenance.watermarks import SCHEMES_BY_NAME, embed

    marked = embed(draw_generated(512, 512, seed=7), SCHEMES_BY_NAME["sdxl"].bits)
    (out / "sdxl_watermarked.png").write_bytes(encode(marked, "PNG"))
    made["sdxl_watermarked.png"] = "unsigned PNG with the SDXL invisible watermark"

    info = PngInfo()
    info.add_text("parameters", A1111_PARAMETERS)
    (out / "ai_metadata.png").write_bytes(
        encode(draw_generated(512, 512, seed=8), "PNG", pnginfo=info)
    )
    made["ai_metadata.png"] = "unsigned PNG with Automatic1111 generation metadata"
    return made


A1111_PARAMETERS = (
    "a watercolour harbour at dawn, fishing boats\n"
    "Negative prompt: blurry, text\n"
    "Steps: 25, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 20261128, Size: 512x512, "
    "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1"
)


def tamper_jpeg(data: bytes) -> bytes:
    """Change scan data near the end of a JPEG (after any manifest), as a pixel edit would."""
    buf = bytearray(data)
    eoi = buf.rfind(b"\xff\xd9")
    if eoi < 200:
        raise ValueError("not a JPEG with scan data")
    for i in range(eoi - 160, eoi - 40, 7):
        if buf[i] not in (0xFF, 0x00) and buf[i - 1] != 0xFF:
            buf[i] ^= 0x24
            if buf[i] == 0xFF:
                buf[i] ^= 0x01
    return bytes(buf)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--new-ca", action="store_true", help="replace the test CA")
    parser.add_argument("--out", type=Path, default=HERE, help="where to write the media")
    args = parser.parse_args(argv)
    if args.new_ca or not (CA_DIR / "root.pem").exists():
        make_ca()
        print(f"wrote test CA to {CA_DIR}")
    made = make_media(args.out)
    (args.out / "SAMPLES.json").write_text(json.dumps(made, indent=2) + "\n", encoding="utf-8")
    for name, what in made.items():
        print(f"{name:30s} {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
