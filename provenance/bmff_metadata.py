"""Metadata in MP4 and MOV files (ISO BMFF and QuickTime): where muxers, cameras, editors and
generators name themselves. Pure Python, bounded, for hostile files.

Read, by box path:

* ``moov/udta/meta`` and ``moov/meta`` (also inside each ``trak``), the metadata box: with an
  ``mdir`` handler, iTunes-style items in ``ilst`` named by four-character codes (``©too`` the
  encoding tool, ``©cmt``, ``desc``, ``©nam``, ``©day``, ``----`` free-form items); with an
  ``mdta`` handler, the names come from the ``keys`` box and items are numbered by them
  (``com.apple.quicktime.make``/``model``/``software``, Android's ``com.android.*``, and the
  arbitrary keys FFmpeg writes with ``-movflags use_metadata_tags``). Apple writes ``moov/meta``
  without the full-box header; both layouts are read. FFmpeg's writer: FFmpeg/FFmpeg
  libavformat/movenc.c (``mov_write_udta_tag``, ``mov_write_meta_tag``, ``mov_write_ilst_tag``,
  ``mov_write_mdta_keys_tag``, ``mov_write_mdta_ilst_tag``).
* ``moov/udta`` QuickTime text atoms (``©swr``, ``©cmt``, ``©des``, ``©mak``, ``©mod``,
  ``©xyz``...: a 16-bit length, a 16-bit language, the text), 3GPP ones (``titl``, ``dscp``,
  ``auth``...) and the ``XMP_`` atom;
* the XMP ``uuid`` box (BE7ACFCB-97A9-42E8-9C71-999491E3AFAC), at the top level or in ``moov``;
* each track's ``mdia/hdlr`` name (the muxer's name for its handler, e.g. "Core Media Video").

Generators write here too: ComfyUI's SaveVideo puts the ``prompt`` and ``workflow`` JSON in
``mdta`` keys (comfyanonymous/ComfyUI comfy_extras/nodes_video.py and
comfy_api/latest/_input_impl/video_types.py, ``use_metadata_tags``); ComfyUI-VideoHelperSuite's
Video Combine writes ``{"prompt": ..., "workflow": ...}`` as the ``comment`` (``©cmt``)
(Kosinkadink/ComfyUI-VideoHelperSuite videohelpersuite/nodes.py, ``ffmpeg_process``).
:mod:`provenance.metadata` interprets what is read.

Bounds: box headers are read by seeking (``mdat`` is never read); at most :data:`_MAX_BOXES`
boxes are visited, only the fixed paths above are descended (no recursion, so nested boxes cost
nothing), a ``udta``/``meta`` box is read whole only up to :data:`_MAX_BOX_READ` bytes and all
reads together up to :data:`_MAX_TOTAL_READ`, at most :data:`_MAX_ITEMS` items are kept and
each value is cut at :data:`_MAX_VALUE` characters.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from provenance.errors import ShinganError
from provenance.media import bmff_boxes

XMP_UUID = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")

_MAX_BOXES = 20_000
_MAX_BOX_READ = 16 * 1024 * 1024
_MAX_TOTAL_READ = 64 * 1024 * 1024
_MAX_ITEMS = 1024
_MAX_KEYS = 1024
_MAX_VALUE = 2_000_000  # ComfyUI workflows are JSON of up to a few hundred KB
_MAX_XMP = 8 * 1024 * 1024

# Item and atom names -> the field name Shingan reports (ExifTool's QuickTime tag names).
_NAMES = {
    "©too": "Encoder",
    "©enc": "EncodedBy",
    "©swr": "Software",
    "©cmt": "Comment",
    "©des": "Description",
    "desc": "Description",
    "ldes": "LongDescription",
    "dscp": "Description",
    "©inf": "Information",
    "©nam": "Title",
    "titl": "Title",
    "©day": "CreationDate",
    "©mak": "Make",
    "©mod": "Model",
    "©xyz": "GPSCoordinates",
    "©ART": "Artist",
    "perf": "Artist",
    "©aut": "Author",
    "auth": "Author",
    "cprt": "Copyright",
    "©cpy": "Copyright",
    "©gen": "Genre",
    "keyw": "Keywords",
    "©key": "Keywords",
    # mdta keys
    "com.apple.quicktime.make": "Make",
    "com.apple.quicktime.model": "Model",
    "com.apple.quicktime.software": "Software",
    "com.apple.quicktime.creationdate": "CreationDate",
    "com.apple.quicktime.location.ISO6709": "GPSCoordinates",
    "com.apple.quicktime.description": "Description",
    "com.apple.quicktime.comment": "Comment",
    "com.apple.quicktime.title": "Title",
    "com.apple.quicktime.author": "Author",
    "com.android.manufacturer": "Make",
    "com.android.model": "Model",
    "com.android.version": "AndroidVersion",
    # FFmpeg's own names when it writes mdta keys (use_metadata_tags)
    "encoder": "Encoder",
    "comment": "Comment",
    "description": "Description",
    "title": "Title",
    "date": "CreationDate",
    "creation_time": "CreationTime",
    "make": "Make",
    "model": "Model",
    "location": "GPSCoordinates",
}
# 3GPP asset atoms in udta: a full box, 16 bits of language, then the text.
_3GPP = {"titl", "dscp", "auth", "perf", "gnre", "cprt", "albm", "yrrc", "kywd"}


@dataclass
class BmffMetadata:
    """What was read: ``items`` as (field name, where, text), XMP packets as (where, bytes)."""

    container: str = "MP4"  # "MOV" for QuickTime files (ftyp 'qt  ')
    items: list[tuple[str, str, str]] = field(default_factory=list)
    xmp: list[tuple[str, bytes]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    boxes: int = 0


class _Budget(ShinganError):
    """A bound was reached; what was read before it is kept."""

    code = "bmff_metadata_bound"


class _Reader:
    def __init__(self, fh: BinaryIO, size: int) -> None:
        self.fh = fh
        self.size = size
        self.read_bytes = 0
        self.out = BmffMetadata()

    # --- boxes in the file, by seeking ----------------------------------------------------

    def file_boxes(self, start: int, end: int, where: str) -> Iterator[tuple[bytes, int, int]]:
        pos = start
        while pos + 8 <= end:
            self._count()
            self.fh.seek(pos)
            head = self.fh.read(16)
            if len(head) < 8:
                self.out.problems.append(f"{where}: the file ends inside a box header")
                return
            size, kind = struct.unpack(">I4s", head[:8])
            header = 8
            if size == 1:
                if len(head) < 16:
                    self.out.problems.append(f"{where}: the file ends inside a box header")
                    return
                size, header = struct.unpack(">Q", head[8:16])[0], 16
            elif size == 0:
                size = end - pos
            if size < header or pos + size > end:
                self.out.problems.append(f"{where}: malformed box {_name(kind)!r} at {pos}")
                return
            yield kind, pos + header, pos + size
            pos += size

    def read(self, start: int, end: int, limit: int = _MAX_BOX_READ) -> bytes | None:
        if end - start > limit or self.read_bytes + (end - start) > _MAX_TOTAL_READ:
            self.out.problems.append(f"a metadata box of {end - start} bytes was not read")
            return None
        self.read_bytes += end - start
        self.fh.seek(start)
        data = self.fh.read(end - start)
        return data if len(data) == end - start else None

    def _count(self) -> None:
        self.out.boxes += 1
        if self.out.boxes > _MAX_BOXES:
            raise _Budget

    # --- the paths read -------------------------------------------------------------------

    def top(self) -> None:
        for kind, start, end in self.file_boxes(0, self.size, "file"):
            if kind == b"ftyp":
                self.fh.seek(start)
                if self.fh.read(4) == b"qt  ":
                    self.out.container = "MOV"
            elif kind == b"moov":
                self.moov(start, end)
            elif kind == b"uuid":
                self.uuid_box(start, end, "uuid")
            elif kind in (b"udta", b"meta"):
                self.memory_box(kind, start, end, _name(kind))

    def moov(self, start: int, end: int) -> None:
        for kind, s, e in self.file_boxes(start, end, "moov"):
            if kind in (b"udta", b"meta"):
                self.memory_box(kind, s, e, f"moov/{_name(kind)}")
            elif kind == b"uuid":
                self.uuid_box(s, e, "moov/uuid")
            elif kind == b"trak":
                self.trak(s, e)

    def trak(self, start: int, end: int) -> None:
        for kind, s, e in self.file_boxes(start, end, "trak"):
            if kind in (b"udta", b"meta"):
                self.memory_box(kind, s, e, f"moov/trak/{_name(kind)}")
            elif kind == b"mdia":
                for k2, s2, e2 in self.file_boxes(s, e, "mdia"):
                    if k2 == b"hdlr":
                        data = self.read(s2, e2, 4096)
                        if data and len(data) > 24:
                            name = _pascal_or_c_string(data[24:])
                            if name:
                                self.add("HandlerName", "moov/trak/mdia/hdlr name", name)

    def uuid_box(self, start: int, end: int, where: str) -> None:
        self.fh.seek(start)
        if self.fh.read(16) != XMP_UUID:
            return
        data = self.read(start + 16, end, _MAX_XMP)
        if data:
            self.out.xmp.append((f"{where} (XMP)", data))

    def memory_box(self, kind: bytes, start: int, end: int, where: str) -> None:
        data = self.read(start, end)
        if data is None:
            return
        if kind == b"meta":
            self.meta(data, 0, len(data), where)
        else:
            self.udta(data, where)

    # --- inside a box read whole ----------------------------------------------------------

    def boxes(self, data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
        """Boxes of an in-memory box's payload, counted against the file's box budget."""
        for box in bmff_boxes(data, start, end):
            self._count()
            yield box

    def udta(self, data: bytes, where: str) -> None:
        for kind, s, e in self.boxes(data, 0, len(data)):
            name = _name(kind)
            if kind == b"meta":
                self.meta(data, s, e, f"{where}/meta")
            elif kind == b"XMP_":
                self.out.xmp.append((f"{where}/XMP_", data[s : min(e, s + _MAX_XMP)]))
            elif kind == b"uuid" and data[s : s + 16] == XMP_UUID:
                self.out.xmp.append((f"{where}/uuid (XMP)", data[s + 16 : min(e, s + _MAX_XMP)]))
            elif kind[:1] == b"\xa9":
                text = _quicktime_text(data[s:e])
                if text:
                    self.add(_NAMES.get(name, name), f"{where} '{name}'", text)
            elif name in _3GPP and e - s > 6:
                text = _3gpp_text(data[s + 6 : e])
                if text:
                    self.add(_NAMES.get(name, name), f"{where} '{name}'", text)

    def meta(self, data: bytes, start: int, end: int, where: str) -> None:
        # ISO 'meta' is a full box (4 bytes of version and flags); Apple's QuickTime 'meta'
        # in moov is not. The handler box comes first in both: look for it.
        if data[start + 4 : start + 8] != b"hdlr":
            start += 4
        handler = b""
        keys: list[str] = []
        ilst: tuple[int, int] | None = None
        for kind, s, e in self.boxes(data, start, end):
            if kind == b"hdlr" and e - s >= 12:
                handler = data[s + 8 : s + 12]
            elif kind == b"keys" and e - s >= 8:
                keys = self.keys(data, s + 8, e)
            elif kind == b"ilst":
                ilst = (s, e)
            elif kind == b"uuid" and data[s : s + 16] == XMP_UUID:
                self.out.xmp.append((f"{where}/uuid (XMP)", data[s + 16 : min(e, s + _MAX_XMP)]))
        if ilst is None:
            return
        numbered = handler == b"mdta" or bool(keys)
        for kind, s, e in self.boxes(data, *ilst):
            index = int.from_bytes(kind, "big")
            if numbered and 1 <= index <= len(keys):
                name = keys[index - 1]
                label = f"{where}/ilst key '{name}'"
            elif kind == b"----":
                name = _freeform_name(self, data, s, e) or "----"
                label = f"{where}/ilst '----' '{name}'"
            else:
                name = _name(kind)
                label = f"{where}/ilst '{name}'"
            value = self.item_value(data, s, e)
            if value:
                self.add(_NAMES.get(name, name), label, value)

    def keys(self, data: bytes, start: int, end: int) -> list[str]:
        out: list[str] = []
        pos = start
        while pos + 8 <= end and len(out) < _MAX_KEYS:
            self._count()
            size = int.from_bytes(data[pos : pos + 4], "big")
            if size < 8 or pos + size > end:
                break
            out.append(_clean_key(data[pos + 8 : pos + size]))
            pos += size
        return out

    def item_value(self, data: bytes, start: int, end: int) -> str:
        for kind, s, e in self.boxes(data, start, end):
            if kind != b"data" or e - s < 8:
                continue
            value = _data_value(int.from_bytes(data[s + 1 : s + 4], "big"), data[s + 8 : e])
            if value:
                return value
        return ""

    def add(self, name: str, where: str, value: str) -> None:
        if len(self.out.items) >= _MAX_ITEMS:
            raise _Budget
        self.out.items.append((name, f"{self.out.container} {where}", value[:_MAX_VALUE]))


def read_bmff_metadata(fh: BinaryIO, size: int | None = None) -> BmffMetadata:
    """The metadata of an MP4/MOV file open for reading (binary). ``size``: its length (found by
    seeking to the end when not given). Malformed boxes stop the walk at their level and are
    listed in ``problems``.

    Raises:
        OSError: the file cannot be read.
    """
    if size is None:
        size = fh.seek(0, 2)
    reader = _Reader(fh, size)
    try:
        reader.top()
    except _Budget:
        reader.out.problems.append("too many boxes or items; only the first were read")
    return reader.out


# --- values -------------------------------------------------------------------------------------


def _name(kind: bytes) -> str:
    """A box type as text: ``\\xa9too`` -> ``©too``."""
    return "".join(chr(b) if 32 <= b < 127 or b == 0xA9 else "?" for b in kind)


def _clean_key(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return "".join(c for c in text if c.isprintable())[:128]


def _text(raw: bytes) -> str:
    """Text of unknown encoding: UTF-8 (with or without BOM), UTF-16 with a BOM, else Latin-1;
    binary data is not text."""
    if raw[:2] in (b"\xfe\xff", b"\xff\xfe"):
        return raw.decode("utf-16", "replace").replace("\x00", "").strip()
    if raw[:3] == b"\xef\xbb\xbf":
        raw = raw[3:]
    sample = raw[:256]
    if sum(1 for b in sample if b < 9 or 13 < b < 32) > len(sample) // 4:
        return ""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.replace("\x00", "").strip()


def _data_value(kind: int, raw: bytes) -> str:
    """An ``ilst`` ``data`` box value by its well-known type (QuickTime File Format spec)."""
    if kind in (1, 4):  # UTF-8
        return raw.decode("utf-8", "replace").replace("\x00", "").strip()
    if kind in (2, 5):  # UTF-16 BE
        return raw.decode("utf-16-be", "replace").replace("\x00", "").strip()
    if kind in (21, 22) and len(raw) in (1, 2, 3, 4, 8):  # integers
        return str(int.from_bytes(raw, "big", signed=kind == 21))
    if kind == 23 and len(raw) == 4:
        return repr(struct.unpack(">f", raw)[0])
    if kind == 24 and len(raw) == 8:
        return repr(struct.unpack(">d", raw)[0])
    if kind == 0:  # implicit: text if it looks like text
        return _text(raw)
    return ""  # images (13, 14, 27), other binary types


def _quicktime_text(payload: bytes) -> str:
    """A ``©xxx`` udta atom: 16-bit length, 16-bit language, text (the first of its entries);
    some writers put the bare text instead."""
    if len(payload) >= 4:
        length = int.from_bytes(payload[:2], "big")
        if 4 + length <= len(payload) and length > 0:
            return _text(payload[4 : 4 + length])
    return _text(payload)


def _3gpp_text(payload: bytes) -> str:
    """A 3GPP asset string: UTF-8, or UTF-16 with a byte-order mark; NUL-terminated."""
    if payload[:2] in (b"\xfe\xff", b"\xff\xfe"):
        return _text(payload)
    return _text(payload.split(b"\x00", 1)[0])


def _freeform_name(reader: _Reader, data: bytes, start: int, end: int) -> str:
    """The ``name`` of a ``----`` item (after its 4 bytes of version and flags)."""
    for kind, s, e in reader.boxes(data, start, end):
        if kind == b"name" and e - s > 4:
            return _clean_key(data[s + 4 : e])
    return ""


def _pascal_or_c_string(raw: bytes) -> str:
    """A handler name: a C string (ISO) or a Pascal string (QuickTime)."""
    if raw and raw[0] == len(raw) - 1 and raw[0] > 0:
        raw = raw[1:]
    elif raw and 0 < raw[0] < len(raw) and raw[0] < 32:
        raw = raw[1 : 1 + raw[0]]
    return _text(raw.split(b"\x00", 1)[0])[:200]
