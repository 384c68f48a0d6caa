"""Fuzz targets: each feeds one input to one parser of untrusted data and lets through only the
errors that parser promises (its documented "bad input" errors). Anything else, or a hang, is a
finding. Run them with ``fuzz/run.py``; seeds come from :func:`seeds`, made from the project's
own samples and synthesised inputs (never third-party media).

==============  ==========================================================================
target          what it exercises
==============  ==========================================================================
media          sniffing, the header check (every container's claimed size), decoding to the
               working copy, for every format Shingan accepts
metadata       EXIF, XMP, IPTC and PNG/WebP text reading, stealth LSB data (decoded pixels),
               ComfyUI EXIF and APNG 'comf' chunks, and every generator parser
video_metadata MP4/MOV metadata boxes (udta, meta/keys/ilst, XMP) and their interpretation
c2pa           the C2PA wrapper: manifest reading, validation codes, signer details, ingredients
archive        zip checks (zip slip, bombs, lying headers) and reading every member
bank_csv       the bank CSV parser
config         the TOML configuration file and ``SHINGAN_*`` variables
==============  ==========================================================================
"""

from __future__ import annotations

import functools
import io
import json
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provenance.trust import TrustConfig

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
_SCRATCH = Path(tempfile.mkdtemp(prefix="shingan-fuzz-")) / "input"


def _scratch(data: bytes, suffix: str = "") -> Path:
    path = _SCRATCH.with_suffix(suffix or ".bin")
    path.write_bytes(data)
    return path


# --- targets ----------------------------------------------------------------------------------


def media(data: bytes) -> None:
    from provenance.media import Limits, MediaError, decode_image, open_media, sniff

    sniff(data[:4096])
    path = _scratch(data)
    limits = Limits(max_pixels=4_000_000, max_frame_pixels=4_000_000)
    try:
        found = open_media(path, limits)
        if found.kind == "image":
            decoded = decode_image(found, limits, working_max_side=512)
            decoded.native_crop((0, 0, 8, 8))
            decoded.image.close()
    except MediaError:
        pass


def metadata(data: bytes) -> None:
    import warnings

    from PIL import Image

    from provenance.metadata import read_metadata

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(data))
    except Exception:  # not an image Pillow opens: metadata is never read from it
        return
    with im:
        # analyze() reads metadata from a decoded image (stealth data lives in the pixels);
        # other callers may pass one not decoded: both are exercised.
        if len(data) % 2 and im.width * im.height <= 4_000_000:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    im.load()
            except Exception:  # undecodable pixels: analyze() stops before metadata
                return
        finding = read_metadata(im)  # promises never to raise for bad data
        json.dumps(finding.fields)


def video_metadata(data: bytes) -> None:
    from provenance.metadata import read_video_metadata

    finding = read_video_metadata(io.BytesIO(data))  # promises never to raise for bad data
    json.dumps(dict(finding.fields))


def c2pa(data: bytes) -> None:
    from provenance.c2pa import verify_c2pa
    from provenance.media import sniff

    kind = sniff(data[:4096])
    mime = kind.mime if kind else "image/jpeg"
    finding = verify_c2pa(io.BytesIO(data), mime, _trust())
    assert finding.state in ("absent", "invalid", "valid", "trusted", "error")


@functools.cache
def _trust() -> TrustConfig:
    from provenance.trust import build_trust

    return build_trust(anchors=[str(SAMPLES / "ca" / "root.pem")])


def archive(data: bytes) -> None:
    from service.archive import ArchiveError, MemberUnreadable, iter_members, open_member

    path = _scratch(data, ".zip")
    try:
        for member, zf in iter_members(
            path, max_members=50, max_total_bytes=1 << 20, max_ratio=100.0
        ):
            try:
                stream = open_member(zf, member)
                while stream.read(65536):
                    pass
            except MemberUnreadable:
                pass  # an item error
    except ArchiveError:
        pass


def bank_csv(data: bytes) -> None:
    from service.banks import BankError, iter_bank_csv

    try:
        text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
        for _ in iter_bank_csv(text, "fuzz", default_bank="b"):
            pass
    except BankError:
        pass


def config(data: bytes) -> None:
    from service.config import ConfigError, load_config

    split = data.find(b"\0")
    toml, env_part = (data, b"") if split < 0 else (data[:split], data[split + 1 :])
    env = {}
    for line in env_part.decode("utf-8", "replace").splitlines()[:8]:
        key, _, value = line.partition("=")
        if key.strip():
            env["SHINGAN_" + key.strip().upper()] = value
    path = _scratch(toml, ".toml")
    try:
        cfg = load_config(path, env=env)
        cfg.limits  # noqa: B018 - derived values must not raise either
        cfg.keys_required()
    except ConfigError:
        pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "media": media,
    "metadata": metadata,
    "video_metadata": video_metadata,
    "c2pa": c2pa,
    "archive": archive,
    "bank_csv": bank_csv,
    "config": config,
}


# --- seeds ------------------------------------------------------------------------------------


def _images() -> list[bytes]:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    out = []
    for name in ("unsigned.jpg", "ai_metadata.png", "sdxl_watermarked.png", "camera_capture.jpg"):
        out.append((SAMPLES / name).read_bytes())
    small = Image.new("RGB", (24, 16), (200, 80, 40))
    for fmt in ("PNG", "GIF", "WEBP", "TIFF", "BMP"):
        buf = io.BytesIO()
        small.save(buf, format=fmt)
        out.append(buf.getvalue())
    info = PngInfo()
    info.add_text("parameters", "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler, Seed: 1")
    info.add_text("prompt", json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 1}}}))
    info.add_itxt(
        "XML:com.adobe.xmp",
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"><rdf:Description '
        'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/'
        'trainedAlgorithmicMedia"/></rdf:RDF></x:xmpmeta>',
    )
    buf = io.BytesIO()
    small.save(buf, format="PNG", pnginfo=info)
    out.append(buf.getvalue())
    exif = small.getexif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS R5"
    exif[0x0131] = "Adobe Photoshop 25.0"
    exif[0x0112] = 6
    buf = io.BytesIO()
    small.save(buf, format="JPEG", exif=exif)
    out.append(buf.getvalue())
    out.extend(_generator_images())
    return out


_COMFY_GRAPH = {
    "3": {
        "class_type": "KSampler",
        "inputs": {"seed": 1, "sampler_name": "euler", "positive": ["6", 0], "model": ["4", 0]},
    },
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "m.safetensors"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat"}},
}
_A1111 = "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler, Seed: 1, Version: f2.0.1"


def _generator_images() -> list[bytes]:
    """ComfyUI's animated WebP (EXIF prompt/workflow) and stealth LSB data in every mode."""
    from PIL import Image

    from provenance.stealth import write_stealth

    out = []
    frames = [Image.new("RGB", (16, 16), (60 * i, 90, 200)) for i in range(3)]
    exif = frames[0].getexif()
    exif[0x0110] = "prompt:" + json.dumps(_COMFY_GRAPH)
    exif[0x010F] = "workflow:" + json.dumps({"nodes": []})
    buf = io.BytesIO()
    frames[0].save(buf, format="WEBP", save_all=True, append_images=frames[1:], exif=exif)
    out.append(buf.getvalue())
    from PIL.PngImagePlugin import PngInfo

    comf = PngInfo()  # SaveAnimatedPNG's private chunks
    comf.add(b"comf", b"prompt\0" + json.dumps(_COMFY_GRAPH).encode(), after_idat=True)
    buf = io.BytesIO()
    frames[0].save(buf, format="PNG", save_all=True, append_images=frames[1:], pnginfo=comf)
    out.append(buf.getvalue())
    base = Image.new("RGB", (80, 80), (120, 130, 140))
    comfy = json.dumps({"prompt": json.dumps(_COMFY_GRAPH), "workflow": "{}"})
    for text, channel, compressed, fmt in (
        (_A1111, "alpha", True, "PNG"),
        (_A1111, "rgb", False, "PNG"),
        (comfy, "alpha", False, "PNG"),
        (json.dumps({"Software": "NovelAI", "Comment": "{}"}), "alpha", True, "WEBP"),
    ):
        image = write_stealth(base, text, channel=channel, compressed=compressed)  # type: ignore[arg-type]
        buf = io.BytesIO()
        image.save(buf, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
        # Odd length: the target decodes it first, as analyze() does.
        out.append(buf.getvalue() + (b"" if len(buf.getvalue()) % 2 else b"\0"))
    return out


def _box(kind: bytes, *children: bytes) -> bytes:
    body = b"".join(children)
    return (8 + len(body)).to_bytes(4, "big") + kind + body


def _videos() -> list[bytes]:
    """The sample clip, and small MP4/MOV files with each kind of metadata box."""

    def item(kind: bytes, value: str) -> bytes:
        return _box(kind, _box(b"data", b"\0\0\0\1\0\0\0\0", value.encode()))

    def qt(kind: bytes, value: str) -> bytes:
        raw = value.encode()
        return _box(kind, len(raw).to_bytes(2, "big"), b"\x15\xc7", raw)

    def keyed(entries: dict[str, str], full: bool) -> bytes:
        keys = b"".join((8 + len(k)).to_bytes(4, "big") + b"mdta" + k.encode() for k in entries)
        items = b"".join(
            item((i + 1).to_bytes(4, "big"), v) for i, v in enumerate(entries.values())
        )
        body = (
            _box(b"hdlr", bytes(8), b"mdta", bytes(13)),
            _box(b"keys", bytes(4), len(entries).to_bytes(4, "big"), keys),
            _box(b"ilst", items),
        )
        return _box(b"meta", bytes(4) if full else b"", *body)

    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        b'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="Adobe Firefly"/>'
        b"</rdf:RDF></x:xmpmeta>"
    )
    ftyp = _box(b"ftyp", b"isom\0\0\2\0isomiso2mp41")
    vhs = json.dumps({"prompt": json.dumps(_COMFY_GRAPH), "workflow": {"nodes": []}})
    itunes = _box(
        b"udta",
        _box(
            b"meta",
            bytes(4),
            _box(b"hdlr", bytes(8), b"mdirappl", bytes(9)),
            _box(b"ilst", item(b"\xa9too", "Lavf61.7.100"), item(b"\xa9cmt", vhs)),
        ),
    )
    comfy = keyed({"encoder": "Lavf", "prompt": json.dumps(_COMFY_GRAPH)}, True)
    apple = keyed({"com.apple.quicktime.make": "Apple", "com.apple.quicktime.model": "x"}, False)
    udta = _box(b"udta", qt(b"\xa9swr", "Premiere"), qt(b"\xa9cmt", _A1111), _box(b"XMP_", xmp))
    trak = _box(b"trak", _box(b"mdia", _box(b"hdlr", bytes(8), b"vide", bytes(12), b"Handler\0")))
    uuid = _box(b"uuid", bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC"), xmp)
    return [
        (SAMPLES / "signed_video.mp4").read_bytes(),
        ftyp + _box(b"moov", trak, itunes) + _box(b"mdat", bytes(16)),
        ftyp + _box(b"moov", _box(b"udta", comfy)),
        _box(b"ftyp", b"qt  \0\0\0\0qt  ") + _box(b"moov", apple, udta) + uuid,
    ]


def seeds(target: str) -> list[bytes]:
    """Starting inputs for a target (the fuzzer mutates from these)."""
    if target in ("media", "metadata"):
        found = _images()
        if target == "media":
            found.append((SAMPLES / "signed_video.mp4").read_bytes())
        return found
    if target == "video_metadata":
        return _videos()
    if target == "c2pa":
        return [
            (SAMPLES / name).read_bytes()
            for name in (
                "camera_capture.jpg",
                "ai_generated.png",
                "composite_ai_ingredient.jpg",
                "tampered.jpg",
            )
        ]
    if target == "archive":
        out = []
        for members in (
            {"a.jpg": b"x" * 100, "dir/b.png": b"y" * 50},
            {"../evil.jpg": b"x"},
            {"bomb.bin": b"\0" * 300_000},
        ):
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                for name, body in members.items():
                    zf.writestr(name, body)
            out.append(buf.getvalue())
        return out
    if target == "bank_csv":
        return [
            b"bank,entry,label,pdq,note,source\nb,x.jpg,manipulated," + b"a" * 64 + b",n,s\n",
            b'entry,label,pdq\n"quoted, name",authentic,' + b"0f" * 32 + b"\n",
            b"\xef\xbb\xbfbank,entry,label,pdq\n",
        ]
    if target == "config":
        return [
            b'max_upload_mb = 10\nthreads = 4\ndetectors = ["synthetic-patch"]\n\0'
            b"api_keys=required\nmax_pixels=1000",
            b'[shingan]\nallowed_hosts = ["a.example"]\nwebhook_allowed_hosts = "10.0.0.0/8"\n',
            b"stage_timeout_s = 0\nmedia_retention_days = 1.5\n\0host=0.0.0.0",
        ]
    raise KeyError(target)
