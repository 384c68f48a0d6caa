"""Is the file whole? Container structure read without decoding: where a file ends too early.

A file cut short (an interrupted download or copy, the usual cause) no longer matches what was
signed, so C2PA reports it as changed; saying that it looks *incomplete* lets a person fetch it
again before concluding it was altered. Each check reads the container's own framing: JPEG
segments up to the end-of-image marker, PNG chunks up to ``IEND``, ISO BMFF boxes (MP4, MOV,
HEIF, AVIF) against the file's length, and WebP's RIFF length. Formats not listed are not checked.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from provenance.errors import ShinganError

#: At most this many segments, chunks or boxes are walked; a longer file is taken as whole.
_MAX_PARTS = 100_000
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Incomplete:
    """Where the file ends too early: ``code`` names the check, ``part`` the chunk or box."""

    code: Literal[
        "jpeg_header", "jpeg_data", "png_chunk", "png_end", "riff_length", "bmff_box", "bmff_header"
    ]
    part: str = ""

    def describe(self) -> str:
        """In English, for the report (pages and the CLI say it in their language)."""
        return {
            "jpeg_header": "the JPEG ends inside a header segment",
            "jpeg_data": "the JPEG ends before its end-of-image marker",
            "png_chunk": f"the PNG ends inside its {self.part!r} chunk",
            "png_end": "the PNG ends before its IEND chunk",
            "riff_length": "the file ends before the length its RIFF header declares",
            "bmff_box": f"the file ends inside its {self.part!r} box",
            "bmff_header": "the file ends inside a box header",
        }[self.code]


class MissingIndex(ShinganError):
    """An MP4/MOV with neither a ``moov`` nor a ``moof`` box: nothing says how to play it."""

    code = "corrupt_media"


def incomplete(path: Path, mime: str) -> Incomplete | None:
    """Where the file looks cut short; None when it looks whole (or the format is not checked).

    Raises:
        MissingIndex: an MP4/MOV without its index boxes (for video containers only).
        OSError: the file cannot be read.
    """
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(0)
        if mime == "image/jpeg":
            return _jpeg(fh, size)
        if mime in ("image/png", "image/apng"):
            return _png(fh, size)
        if mime == "image/webp":
            return _riff(fh, size)
        if mime in ("video/mp4", "video/quicktime", "image/heic", "image/heif", "image/avif"):
            return _bmff(fh, size, video=mime.startswith("video/"))
    return None


def _jpeg(fh: BinaryIO, size: int) -> Incomplete | None:
    """Segments by their lengths up to the first start-of-scan, then the entropy-coded data up
    to the end-of-image marker (FF D9 cannot occur unescaped inside it)."""
    if fh.read(2) != b"\xff\xd8":
        return None
    for _ in range(_MAX_PARTS):
        marker = fh.read(2)
        while len(marker) == 2 and marker[0] == 0xFF and marker[1] == 0xFF:  # fill bytes
            marker = marker[1:] + fh.read(1)
        if len(marker) < 2:
            return Incomplete("jpeg_header")
        if marker[0] != 0xFF:
            return None  # not the framing we know; leave it to the decoder
        code = marker[1]
        if code == 0xD9:
            return None
        if 0xD0 <= code <= 0xD7 or code == 0x01:
            continue  # markers without a length
        raw = fh.read(2)
        if len(raw) < 2:
            return Incomplete("jpeg_header")
        length = struct.unpack(">H", raw)[0]
        if length < 2 or fh.tell() + length - 2 > size:
            return Incomplete("jpeg_header")
        fh.seek(length - 2, 1)
        if code == 0xDA:  # start of scan: the image data runs to the end-of-image marker
            if _find(fh, b"\xff\xd9"):
                return None
            return Incomplete("jpeg_data")
    return None


def _find(fh: BinaryIO, needle: bytes) -> bool:
    tail = b""
    while chunk := fh.read(_CHUNK):
        if needle in tail + chunk:
            return True
        tail = chunk[-(len(needle) - 1) :]
    return False


def _png(fh: BinaryIO, size: int) -> Incomplete | None:
    if fh.read(8) != b"\x89PNG\r\n\x1a\n":
        return None
    for _ in range(_MAX_PARTS):
        head = fh.read(8)
        if len(head) < 8:
            return Incomplete("png_end")
        length, kind = struct.unpack(">I4s", head)
        if fh.tell() + length + 4 > size:
            return Incomplete("png_chunk", kind.decode("latin-1"))
        if kind == b"IEND":
            return None
        fh.seek(length + 4, 1)
    return None


def _riff(fh: BinaryIO, size: int) -> Incomplete | None:
    head = fh.read(12)
    if len(head) < 12 or head[:4] != b"RIFF":
        return None
    declared = struct.unpack("<I", head[4:8])[0] + 8
    return Incomplete("riff_length") if declared > size else None


def _bmff(fh: BinaryIO, size: int, *, video: bool) -> Incomplete | None:
    offset, seen = 0, set()
    for _ in range(_MAX_PARTS):
        if offset >= size:
            break
        fh.seek(offset)
        head = fh.read(16)
        if len(head) < 8:
            return Incomplete("bmff_header")
        box_size, kind = struct.unpack(">I4s", head[:8])
        name = kind.decode("latin-1")
        if box_size == 1:
            if len(head) < 16:
                return Incomplete("bmff_header")
            box_size = struct.unpack(">Q", head[8:16])[0]
        elif box_size == 0:
            box_size = size - offset  # the box runs to the end of the file
        if box_size < 8:
            return None  # not framing we can follow; leave it to the decoder
        seen.add(kind)
        if offset + box_size > size:
            return Incomplete("bmff_box", name)
        offset += box_size
    if video and not seen & {b"moov", b"moof"}:
        raise MissingIndex(
            "the video has no 'moov' box (its index), so it cannot be played; an interrupted "
            "download or a broken export is the usual cause"
        )
    return None
