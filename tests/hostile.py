"""Hostile inputs for the hardening tests (issue 11), each built in the test run from the
project's own samples with Pillow: nothing here is a stored attack file."""

from __future__ import annotations

import io
import struct
from pathlib import Path

from PIL import Image

from tests.conftest import SAMPLES


def sof_patched_jpeg(width: int, height: int) -> bytes:
    """``samples/unsigned.jpg`` with its SOF0 header claiming ``width`` x ``height``: 37 KB
    that a decoder expands to the claimed size."""
    data = bytearray((SAMPLES / "unsigned.jpg").read_bytes())
    i = data.find(b"\xff\xc0")
    data[i + 5 : i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def heic(size: tuple[int, int] = (64, 48)) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, format="HEIF", quality=50)
    return buf.getvalue()


def heic_ispe(width: int, height: int) -> bytes:
    """A small HEIC whose first ``ispe`` box claims ``width`` x ``height``."""
    data = bytearray(heic())
    i = data.find(b"ispe")
    data[i + 8 : i + 16] = struct.pack(">II", width, height)
    return bytes(data)


def nested_xmp_jpeg(n: int = 1000) -> bytes:
    body = "<rdf:Description><a:k><rdf:li>" * n + "</rdf:li></a:k></rdf:Description>" * n
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:a="urn:a">'
        f"{body}</rdf:RDF></x:xmpmeta>"
    ).encode()
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 90, 90)).save(buf, format="JPEG", xmp=packet)
    return buf.getvalue()


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path
