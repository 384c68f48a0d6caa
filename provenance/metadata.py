"""What a file's metadata says about where it came from.

Reads EXIF (IFD0, Exif IFD, GPS, MakerNote presence), XMP (parsed with defusedxml, so a hostile
packet cannot expand entities), IPTC IIM and PNG text chunks through Pillow, and recognises:

* generator signatures: Automatic1111/Forge, ComfyUI, InvokeAI (all its historical keys),
  NovelAI, Fooocus, SwarmUI, Midjourney, DALL-E/OpenAI, Adobe Firefly, other named AI services,
  and IPTC ``DigitalSourceType`` declarations, each with the exact field that revealed it;
* camera origin: make, model, lens, capture time, and the software chain;
* inconsistencies a fact-checker should see (camera EXIF but an editor in the chain, capture
  after modification, EXIF dimensions that differ from the pixels, generator data beside camera
  EXIF).

Everything copied out of a file is bounded in length; renderers must still escape it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from PIL import ExifTags, Image, IptcImagePlugin

from provenance.bmff_metadata import read_bmff_metadata
from provenance.errors import ShinganError
from provenance.source_types import AI_SOURCE_TYPES
from provenance.stealth import read_stealth

log = logging.getLogger(__name__)

_MAX_VALUE = 300
_MAX_PROMPT = 1000
_MAX_FIELDS = 120
_MAX_JSON = 2_000_000  # largest metadata JSON we parse (ComfyUI workflows can be big)


@dataclass(frozen=True)
class GeneratorSignature:
    """One piece of evidence that an AI tool made the file."""

    name: str  # stable identifier: automatic1111, comfyui, invokeai, novelai, ...
    field: str  # the exact field that revealed it, e.g. "PNG text 'parameters'"
    evidence: str  # a short excerpt of that field
    model: str | None = None
    sampler: str | None = None
    seed: str | None = None
    steps: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    variant: str | None = None  # e.g. "forge", "DALL-E 2"


@dataclass(frozen=True)
class Camera:
    make: str | None = None
    model: str | None = None
    lens: str | None = None
    serial: str | None = None
    capture_time: str | None = None

    @property
    def display(self) -> str:
        """ "Canon EOS 40D" rather than "Canon Canon EOS 40D"."""
        make, model = self.make or "", self.model or ""
        if make and model.lower().startswith(make.split()[0].lower()):
            return model
        return " ".join(x for x in (make, model) if x)


@dataclass(frozen=True)
class MetadataFinding:
    generator: str | None = None
    ai_declared: bool = False
    digital_source_type: str | None = None
    signatures: tuple[GeneratorSignature, ...] = ()
    camera: Camera | None = None
    software: tuple[str, ...] = ()
    editors: tuple[str, ...] = ()
    modified_at: str | None = None
    has_gps: bool = False
    has_makernote: bool = False
    inconsistencies: tuple[str, ...] = ()
    fields: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None


# --- raw collection ---------------------------------------------------------------------------

_EXIF_NAMES = {**ExifTags.TAGS}
_GPS_NAMES = {**ExifTags.GPSTAGS}
_IPTC_NAMES = {
    (2, 5): "ObjectName",
    (2, 25): "Keywords",
    (2, 55): "DateCreated",
    (2, 60): "TimeCreated",
    (2, 65): "OriginatingProgram",
    (2, 70): "ProgramVersion",
    (2, 80): "By-line",
    (2, 85): "By-lineTitle",
    (2, 90): "City",
    (2, 101): "Country",
    (2, 105): "Headline",
    (2, 110): "Credit",
    (2, 115): "Source",
    (2, 116): "CopyrightNotice",
    (2, 120): "Caption-Abstract",
    (2, 122): "Writer-Editor",
}
# Pillow `info` keys that are decoding parameters, not metadata.
_INFO_SKIP = {
    "dpi",
    "gamma",
    "icc_profile",
    "exif",
    "xmp",
    "transparency",
    "srgb",
    "chromaticity",
    "jfif",
    "jfif_version",
    "jfif_unit",
    "jfif_density",
    "adobe",
    "adobe_transform",
    "progressive",
    "progression",
    "photoshop",
    "interlace",
    "aspect",
    "duration",
    "loop",
    "background",
    "version",
    "extension",
    "compression",
    "mp",
    "mpoffset",
    "XML:com.adobe.xmp",
}

_XMP_PREFIXES = {
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://ns.adobe.com/xap/1.0/mm/": "xmpMM",
    "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#": "stEvt",
    "http://ns.adobe.com/xap/1.0/sType/ResourceRef#": "stRef",
    "http://ns.adobe.com/photoshop/1.0/": "photoshop",
    "http://iptc.org/std/Iptc4xmpExt/2008-02-29/": "Iptc4xmpExt",
    "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": "Iptc4xmpCore",
    "http://ns.adobe.com/tiff/1.0/": "tiff",
    "http://ns.adobe.com/exif/1.0/": "exif",
    "http://cipa.jp/exif/1.0/": "exifEX",
    "http://ns.adobe.com/exif/1.0/aux/": "aux",
    "http://ns.adobe.com/camera-raw-settings/1.0/": "crs",
    "http://ns.adobe.com/xap/1.0/rights/": "xmpRights",
    "http://ns.useplus.org/ldf/xmp/1.0/": "plus",
    "http://ns.google.com/photos/1.0/camera/": "GCamera",
    "http://ns.adobe.com/pdf/1.3/": "pdf",
}
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


@dataclass
class _Raw:
    """Every metadata value found, as text, keyed by a readable source-qualified name."""

    values: dict[str, str] = field(default_factory=dict)
    history_agents: list[str] = field(default_factory=list)
    has_gps: bool = False
    has_makernote: bool = False
    #: Where a key was found, when its name alone does not say it ("EXIF Model (0x0110) ...").
    labels: dict[str, str] = field(default_factory=dict)
    #: Generator payloads found outside the usual fields, as (where, text): stealth LSB data,
    #: a video's comment. Each is read as A1111 parameters, a ComfyUI or a NovelAI JSON object.
    embedded: list[tuple[str, str]] = field(default_factory=list)

    def put(self, key: str, value: Any) -> None:
        text = _text(value)
        if text and key not in self.values:
            self.values[key] = text

    def get(self, *keys: str) -> str | None:
        for key in keys:
            if self.values.get(key):
                return self.values[key]
        return None


def _text(value: Any, limit: int | None = None) -> str:
    if isinstance(value, bytes):
        value = _decode_bytes(value)
    elif isinstance(value, tuple | list):
        value = ", ".join(_text(v) for v in value[:32])
    text = str(value).replace("\x00", "").strip()
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _decode_bytes(data: bytes) -> str:
    if not data:
        return ""
    if sum(1 for b in data[:256] if b < 9 or 13 < b < 32) > len(data[:256]) // 4:
        return ""  # binary
    for enc in ("utf-8", "latin-1"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return ""


def decode_user_comment(data: bytes | str) -> str:
    """Decode EXIF UserComment: an 8-byte character-code prefix, then the text.

    A1111 and others write ``UNICODE`` comments in UTF-16 of either byte order; the byte order
    is detected from where the zero bytes fall.
    """
    if isinstance(data, str):
        return data.replace("\x00", "").strip()
    head, body = data[:8], data[8:]
    if head.startswith(b"UNICODE"):
        if len(body) >= 2:
            zeros_even = sum(1 for b in body[0:200:2] if b == 0)
            zeros_odd = sum(1 for b in body[1:200:2] if b == 0)
            codec = "utf-16-be" if zeros_even >= zeros_odd else "utf-16-le"
            return body.decode(codec, errors="replace").replace("\x00", "").strip()
        return ""
    if head.startswith(b"ASCII") or head.startswith(b"JIS"):
        return (
            body.decode("utf-8" if head.startswith(b"ASCII") else "shift_jis", errors="replace")
            .replace("\x00", "")
            .strip()
        )
    if head == b"\x00" * 8:
        return _decode_bytes(body).strip()
    return _decode_bytes(data).strip()


def _collect(im: Image.Image) -> _Raw:
    raw = _Raw()
    _collect_exif(im, raw)
    _collect_text(im, raw)
    xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    if xmp:
        _collect_xmp(xmp, raw)
    _collect_iptc(im, raw)
    _collect_stealth(im, raw)
    return raw


def _collect_stealth(im: Image.Image, raw: _Raw) -> None:
    """Parameters hidden in the pixels' lowest bits (:mod:`provenance.stealth`)."""
    try:
        found = read_stealth(im)
    except Exception as exc:  # decoding a signed image failed: the rest still counts
        log.debug("stealth data unreadable: %s", exc)
        raw.put("Stealth:error", f"stealth data could not be read: {exc}")
        return
    if found is None:
        return
    plane = "alpha-channel" if found.channel == "alpha" else "RGB"
    where = f"{im.format} {plane} LSB ({found.signature.replace('_', ' ')})"
    key = f"Stealth:{found.signature}"
    raw.labels[key] = where
    raw.put(key, found.text)
    if found.error:
        raw.put("Stealth:error", found.error)
    elif found.truncated:
        raw.put("Stealth:error", "stealth data larger than the bound; only its start was read")
    if found.text:
        raw.embedded.append((where, found.text))


def _collect_exif(im: Image.Image, raw: _Raw) -> None:
    try:
        exif = im.getexif()
    except Exception as exc:  # malformed EXIF must not stop the rest
        log.debug("EXIF unreadable: %s", exc)
        return
    ifds: list[tuple[Mapping[int, Any], Mapping[int, str]]] = [(exif, _EXIF_NAMES)]
    for ifd_id in (ExifTags.IFD.Exif, ExifTags.IFD.Interop):
        try:
            ifds.append((exif.get_ifd(ifd_id), _EXIF_NAMES))
        except Exception as exc:
            log.debug("EXIF IFD %s unreadable: %s", ifd_id, exc)
    try:
        gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        raw.has_gps = any(k in gps for k in (2, 4))  # latitude / longitude present
    except Exception:
        gps = {}
    for index, (tags, names) in enumerate(ifds):
        for tag, value in tags.items():
            name = names.get(tag, f"0x{tag:04x}")
            if tag in (ExifTags.Base.ExifOffset, ExifTags.Base.GPSInfo, 0xA005):
                continue
            if index == 0 and _comfy_exif(tag, name, value, raw):
                continue
            if tag == ExifTags.Base.UserComment:
                raw.put("EXIF:UserComment", decode_user_comment(value))
            elif tag == ExifTags.Base.MakerNote:
                raw.has_makernote = True
                text = _decode_bytes(value) if isinstance(value, bytes) else _text(value)
                if text and text.isprintable():
                    raw.put("EXIF:MakerNote", text)
            elif tag in (0x9C9B, 0x9C9C, 0x9C9D, 0x9C9E, 0x9C9F) and isinstance(value, bytes):
                raw.put(f"EXIF:{name}", value.decode("utf-16-le", errors="replace"))
            elif isinstance(value, bytes) and len(value) > 64:
                continue  # binary blobs (PrintIM, thumbnails) say nothing useful as text
            else:
                raw.put(f"EXIF:{name}", value)
    for tag, value in gps.items():
        raw.put(f"GPS:{_GPS_NAMES.get(tag, tag)}", value)


# ComfyUI's WebP savers write the API graph into IFD0 Model (0x0110) as ``prompt:<json>`` and
# each ``extra_pnginfo`` entry (the UI ``workflow``) into Make (0x010F), then 0x010E, 0x010D...
# as ``<key>:<json>``: comfyanonymous/ComfyUI comfy_api/latest/_ui.py
# (ImageSaveHelper._create_webp_metadata, used by SaveAnimatedWEBP in
# comfy_extras/nodes_images.py); older releases wrote the same from nodes_images.py itself.
# Custom nodes copy the scheme, some with capitalised keys ("Prompt:", "Workflow:").
_COMFY_EXIF_TAGS = range(0x0100, 0x0111)
_COMFY_EXIF_VALUE = re.compile(r"^\s*([A-Za-z_][\w-]{0,40}):\s*(?=[\[{])")


def _comfy_exif(tag: int, name: str, value: Any, raw: _Raw) -> bool:
    """Keep a ComfyUI ``key:<json>`` value out of the camera fields; True when it was one."""
    if tag not in _COMFY_EXIF_TAGS or not isinstance(value, str | bytes):
        return False
    text = _text(value)
    match = _COMFY_EXIF_VALUE.match(text)
    if match is None:
        return False
    key = match.group(1).lower()
    raw.put(f"ComfyUI:{key}", text[match.end() :])
    raw.labels.setdefault(f"ComfyUI:{key}", f"EXIF {name} (0x{tag:04X}) '{match.group(1)}:'")
    return True


def _collect_text(im: Image.Image, raw: _Raw) -> None:
    """PNG tEXt/zTXt/iTXt chunks (also those after the image data), GIF/WebP comments."""
    text_chunks: Mapping[str, Any] = {}
    if im.format == "PNG":
        try:
            text_chunks = im.text  # type: ignore[attr-defined]
        except Exception as exc:  # pragma: no cover - Pillow raises on some broken files
            log.debug("PNG text unreadable: %s", exc)
            text_chunks = {}
    merged: dict[Any, Any] = {k: v for k, v in im.info.items() if isinstance(v, str | bytes)}
    merged.update(text_chunks)
    for key, value in merged.items():
        if key in _INFO_SKIP or not isinstance(key, str):
            continue
        raw.put(f"PNG:{key}" if im.format == "PNG" else f"{im.format}:{key}", value)
    if im.format == "PNG":
        for data in _comf_chunks(im):
            name, _, value = data.partition(b"\0")
            key = "PNGcomf:" + name.decode("latin-1")[:64]
            raw.labels.setdefault(key, f"PNG 'comf' chunk '{name.decode('latin-1')[:64]}'")
            raw.put(key, value.decode("utf-8", "replace"))


_MAX_PNG_CHUNKS = 100_000


def _comf_chunks(im: Image.Image) -> list[bytes]:
    """ComfyUI's private ``comf`` chunks (``key NUL json``), which its SaveAnimatedPNG writes
    after the image data for the prompt and each extra_pnginfo entry (comfyanonymous/ComfyUI
    comfy_api/latest/_ui.py, ImageSaveHelper's APNG metadata). Pillow keeps them in
    ``private_chunks`` once it has read past them; an animation rewound to its first frame has
    lost them, so its chunk headers are walked (by seeking, nothing decoded) to find them."""
    found = [c[1] for c in getattr(im, "private_chunks", []) if c[0] == b"comf"]
    if found or not getattr(im, "is_animated", False):
        return found
    # Once a frame is decoded Pillow keeps an animation's file in ``_fp`` (``fp`` is None).
    fp: Any = getattr(im, "fp", None) or getattr(im, "_fp", None)
    if not (hasattr(fp, "seek") and hasattr(fp, "read") and hasattr(fp, "tell")):
        return found
    try:
        position = fp.tell()
    except (OSError, ValueError):  # closed
        return found
    try:
        offset = 8
        for _ in range(_MAX_PNG_CHUNKS):
            fp.seek(offset)
            head = fp.read(8)
            if len(head) < 8:
                break
            length, kind = int.from_bytes(head[:4], "big"), head[4:]
            if kind == b"IEND":
                break
            if kind == b"comf" and length <= _MAX_JSON + 256:
                found.append(fp.read(length))
            offset += 12 + length
    except (OSError, ValueError) as exc:  # pragma: no cover - a file that stops reading
        log.debug("PNG chunks unreadable: %s", exc)
    finally:
        fp.seek(position)
    return found


# Bounds on one XMP packet. Real packets stay far below them (a Photoshop file with a long
# DocumentAncestors list: about 20,000 elements in 1 MB); a packet over a bound is read up to it.
_XMP_MAX_BYTES = 8 * 1024 * 1024
_XMP_MAX_ELEMENTS = 100_000
_XMP_MAX_DEPTH = 64
# Characters XML 1.0 forbids, raw or as character references. One of them makes expat refuse
# the whole packet, which would hide an AI declaration beside it; they are replaced by spaces.
_XML_BAD_CHARS = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_XML_BAD_REFS = re.compile(
    rb"&#(?:[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F])|0*(?:[0-8]|1[124-9]|2[0-9]|3[01]));"
)
# For packets that still do not parse: ``prefix:Name="value"`` attributes and
# ``<prefix:Name>value</prefix:Name>`` elements, read by linear patterns.
_XMP_ATTR = re.compile(rb'\b([A-Za-z][\w.-]{0,40}):([A-Za-z][\w.-]{0,60})\s*=\s*"([^"<]{0,2000})"')
_XMP_ELEM = re.compile(rb"<([A-Za-z][\w.-]{0,40}):([A-Za-z][\w.-]{0,60})>([^<]{1,2000})</\1:\2>")


class _XmpTooComplex(ShinganError):
    """The packet crossed a bound; what was parsed before it is still used."""

    code = "xmp_too_complex"


def _clean_xmp(data: bytes) -> bytes:
    """Cut the packet to its ``x:xmpmeta`` element and replace characters XML 1.0 forbids."""
    start = data.find(b"<x:xmpmeta")
    end = data.rfind(b"</x:xmpmeta>")
    if start >= 0 and end > start:
        data = data[start : end + len(b"</x:xmpmeta>")]
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or data[:4] == b"\x00\x00\xfe\xff":
        return data  # UTF-16/32 (rare): left to the parser as it is
    data = data.decode("utf-8", "replace").encode("utf-8")
    data = _XML_BAD_CHARS.sub(b" ", data)
    return _XML_BAD_REFS.sub(b" ", data)


def _parse_xmp(data: bytes) -> tuple[Any, bool]:
    """Parse with defusedxml (no DTDs, entities or external references), stopping at the
    element and depth bounds. Returns (root, complete).

    Raises:
        Exception: the packet is not well-formed XML (expat's or defusedxml's errors).
    """
    from defusedxml import ElementTree as SafeET

    root = None
    count = depth = 0
    try:
        for kind, elem in SafeET.iterparse(
            io.BytesIO(data), events=("start", "end"), forbid_dtd=True
        ):
            if kind == "end":
                depth -= 1
                continue
            if root is None:
                root = elem
            count += 1
            depth += 1
            if count > _XMP_MAX_ELEMENTS or depth > _XMP_MAX_DEPTH:
                raise _XmpTooComplex
    except _XmpTooComplex:
        return root, False
    return root, True


def _collect_xmp(xmp: bytes | str, raw: _Raw) -> None:
    """Every XMP property as text, in time linear in the packet's size.

    Each element is visited a bounded number of times: property values are read from their own
    ``rdf:Bag/Seq/Alt`` items only, never by searching a subtree again for every ancestor (which
    made nested packets cost cubic time).
    """
    data = xmp.encode("utf-8", "replace") if isinstance(xmp, str) else bytes(xmp)
    oversized = len(data) > _XMP_MAX_BYTES
    data = _clean_xmp(data[:_XMP_MAX_BYTES])
    try:
        if oversized:
            raise _XmpTooComplex
        root, complete = _parse_xmp(data)
    except Exception as exc:
        log.debug("XMP unparsable: %s", exc)
        found = _xmp_by_pattern(data, raw)
        raw.put(
            "XMP:error",
            "unparsable XMP packet" + ("; some fields were read by pattern" if found else ""),
        )
        return
    if root is None:
        return
    if not complete:
        raw.put("XMP:error", "XMP packet too large or deeply nested; only its start was read")
    _walk_xmp(root, raw)


def _xmp_name(tag: str) -> str:
    if tag.startswith("{"):
        ns, local = tag[1:].split("}", 1)
        return f"{_XMP_PREFIXES.get(ns, ns.rstrip('/#').rsplit('/', 1)[-1])}:{local}"
    return tag


_RDF_DESCRIPTION = f"{{{_RDF}}}Description"
_RDF_LI = f"{{{_RDF}}}li"
_RDF_CONTAINERS = frozenset(f"{{{_RDF}}}{k}" for k in ("Bag", "Seq", "Alt"))
_RDF_RESOURCE = f"{{{_RDF}}}resource"
_HISTORY = "{http://ns.adobe.com/xap/1.0/mm/}History"
_AGENT = "{http://ns.adobe.com/xap/1.0/sType/ResourceEvent#}softwareAgent"


def _xmp_values(elem: Any) -> list[str]:
    """A property's value: its list items (one level of container), else its text or resource."""
    items: list[str] = []
    for container in elem:
        if container.tag not in _RDF_CONTAINERS:
            continue
        for li in container:
            if li.tag != _RDF_LI:
                continue
            text = (li.text or "").strip()
            if not text:  # a structure as an item: its fields' own text, one level down
                text = " ".join(t for t in ((c.text or "").strip() for c in li) if t)
            if text:
                items.append(_text(text))
    if items:
        return items
    text = (elem.text or "").strip()
    resource = elem.get(_RDF_RESOURCE)
    return [text] if text else ([resource] if resource else [])


def _walk_xmp(root: Any, raw: _Raw) -> None:
    """Visit the tree once, in document order, reading each ``rdf:Description``'s properties
    and every software agent under ``xmpMM:History``."""
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        elem, in_history = stack.pop()
        if in_history:
            agent = elem.get(_AGENT)
            if agent is None and elem.tag == _AGENT:
                agent = elem.text
            if agent and agent.strip():
                raw.history_agents.append(_text(agent, _MAX_VALUE))
        if elem.tag == _RDF_DESCRIPTION:
            for attr, value in elem.attrib.items():
                if not attr.startswith(f"{{{_RDF}}}"):
                    raw.put(f"XMP:{_xmp_name(attr)}", value)
            for child in elem:
                if child.tag == _HISTORY:
                    continue
                key = _xmp_name(child.tag)
                vals = _xmp_values(child)
                if vals:
                    raw.put(f"XMP:{key}", "; ".join(vals))
                for attr, value in child.attrib.items():  # struct fields written as attributes
                    if not attr.startswith(f"{{{_RDF}}}"):
                        raw.put(f"XMP:{key}/{_xmp_name(attr)}", value)
        children = list(elem)
        stack.extend((c, in_history or c.tag == _HISTORY) for c in reversed(children))


def _xmp_by_pattern(data: bytes, raw: _Raw) -> bool:
    """Read ``prefix:Name`` properties from a packet that is not well-formed XML, so that one
    broken byte does not hide a declaration. Prefixes are taken as written. Returns whether any
    property was found."""
    found = 0
    for pattern in (_XMP_ATTR, _XMP_ELEM):
        for m in pattern.finditer(data):
            prefix, name = (
                m.group(1).decode("ascii", "replace"),
                m.group(2).decode("ascii", "replace"),
            )
            if prefix in ("xmlns", "xml", "rdf", "x"):
                continue
            value = m.group(3).decode("utf-8", "replace").strip()
            if value:
                raw.put(f"XMP:{prefix}:{name}", value)
                found += 1
                if found >= _MAX_FIELDS:
                    return True
    return bool(found)


def _collect_iptc(im: Image.Image, raw: _Raw) -> None:
    try:
        iptc = IptcImagePlugin.getiptcinfo(im)  # type: ignore[arg-type]
    except Exception as exc:
        log.debug("IPTC unreadable: %s", exc)
        return
    if not iptc:
        return
    for key, value in iptc.items():
        label = _IPTC_NAMES.get(key)
        if label is None:
            continue
        text = "; ".join(_text(v) for v in value[:32]) if isinstance(value, list) else value
        raw.put(f"IPTC:{label}", text)


# --- generators -------------------------------------------------------------------------------


def _excerpt(text: str, limit: int = 160) -> str:
    return _text(text, limit)


def _loads(text: str) -> Any:
    if len(text) > _MAX_JSON:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


_A1111_LINE = re.compile(r"(?:^|\n)(Steps: \d+.*)$", re.DOTALL)
_A1111_KV = re.compile(r'\s*([\w \-/]+):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')


def parse_a1111(text: str) -> dict[str, str] | None:
    """Split Automatic1111 ``parameters`` into prompt, negative prompt and settings."""
    match = _A1111_LINE.search(text)
    if not match:
        return None
    head, settings_line = text[: match.start(1)], match.group(1)
    out: dict[str, str] = {}
    for key, value in _A1111_KV.findall(settings_line.split("\n", 1)[0]):
        out[key.strip()] = value.strip().strip('"')
    prompt, _, negative = head.partition("Negative prompt:")
    out["prompt"] = prompt.strip()
    out["negative_prompt"] = negative.strip()
    return out


def _sig(name: str, field_name: str, evidence: str, **kw: Any) -> GeneratorSignature:
    clean = {
        k: (_text(v, _MAX_PROMPT if "prompt" in k else _MAX_VALUE) if v not in (None, "") else None)
        for k, v in kw.items()
    }
    return GeneratorSignature(name=name, field=field_name, evidence=_excerpt(evidence), **clean)


def _detect_a1111_family(raw: _Raw) -> Iterable[GeneratorSignature]:
    for key, where in (
        ("PNG:parameters", "PNG text 'parameters'"),
        ("EXIF:UserComment", "EXIF UserComment (0x9286)"),
        ("WEBP:parameters", "WebP 'parameters'"),
    ):
        text = raw.values.get(key)
        if text:
            yield from _a1111_sigs(text, where)


def _a1111_sigs(text: str, where: str) -> Iterable[GeneratorSignature]:
    """A1111/Forge ``parameters`` text, or the JSON that SwarmUI and Fooocus write instead."""
    data = _loads(text) if text.lstrip().startswith("{") else None
    if isinstance(data, dict):
        if "sui_image_params" in data:
            p = data["sui_image_params"] if isinstance(data["sui_image_params"], dict) else {}
            yield _sig(
                "swarmui",
                where,
                text,
                model=p.get("model"),
                sampler=p.get("sampler"),
                seed=p.get("seed"),
                steps=p.get("steps"),
                prompt=p.get("prompt"),
                negative_prompt=p.get("negativeprompt"),
            )
            return
        if "fooocus_scheme" in data or str(data.get("version", "")).lower().startswith("fooocus"):
            yield _sig(
                "fooocus",
                where,
                text,
                model=data.get("base_model") or data.get("Base Model"),
                sampler=data.get("sampler") or data.get("Sampler"),
                seed=data.get("seed") or data.get("Seed"),
                steps=data.get("steps") or data.get("Steps"),
                prompt=data.get("prompt") or data.get("Prompt"),
                negative_prompt=data.get("negative_prompt") or data.get("Negative Prompt"),
                variant=data.get("version"),
            )
            return
    parsed = parse_a1111(text)
    if parsed is None:
        return
    version = parsed.get("Version", "")
    variant: str | None
    if "fooocus" in version.lower():
        name, variant = "fooocus", version
    elif version.startswith("f") and version[1:2].isdigit():
        name, variant = "automatic1111", "forge " + version
    else:
        name, variant = "automatic1111", version or None
    yield _sig(
        name,
        where,
        text,
        model=parsed.get("Model") or parsed.get("Model hash"),
        sampler=parsed.get("Sampler"),
        seed=parsed.get("Seed"),
        steps=parsed.get("Steps"),
        prompt=parsed.get("prompt"),
        negative_prompt=parsed.get("negative_prompt"),
        variant=variant,
    )


def _comfy_graph(prompt: Any) -> dict[str, Any]:
    """Model, sampler, seed and positive prompt from a ComfyUI API-format graph."""
    out: dict[str, Any] = {}
    if not isinstance(prompt, dict):
        return out
    nodes = {k: v for k, v in prompt.items() if isinstance(v, dict)}

    def inputs(node: Any) -> dict[str, Any]:
        value = node.get("inputs") if isinstance(node, dict) else None
        return value if isinstance(value, dict) else {}

    for node in nodes.values():
        ins = inputs(node)
        for key in ("ckpt_name", "unet_name", "model_name"):
            if isinstance(ins.get(key), str) and "model" not in out:
                out["model"] = ins[key]
        if isinstance(ins.get("sampler_name"), str) and "sampler" not in out:
            out["sampler"] = ins["sampler_name"]
        for key in ("seed", "noise_seed"):
            if isinstance(ins.get(key), int | str) and "seed" not in out:
                out["seed"] = ins[key]
        if isinstance(ins.get("steps"), int) and "steps" not in out:
            out["steps"] = ins["steps"]
        positive = ins.get("positive")
        if isinstance(positive, list) and positive and "prompt" not in out:
            source = nodes.get(str(positive[0]))
            text = inputs(source).get("text") if source else None
            if isinstance(text, str):
                out["prompt"] = text
        negative = ins.get("negative")
        if isinstance(negative, list) and negative and "negative_prompt" not in out:
            source = nodes.get(str(negative[0]))
            text = inputs(source).get("text") if source else None
            if isinstance(text, str):
                out["negative_prompt"] = text
    if "prompt" not in out:
        texts: list[str] = [
            t for t in (inputs(n).get("text") for n in nodes.values()) if isinstance(t, str)
        ]
        if texts:
            out["prompt"] = max(texts, key=len)
    return out


# Where ComfyUI's API graph (``prompt``) and UI graph (``workflow``) are found, as pairs of keys.
_COMFY_KEYS = (
    ("PNG:prompt", "PNG:workflow"),  # SaveImage: PNG tEXt
    ("PNGcomf:prompt", "PNGcomf:workflow"),  # SaveAnimatedPNG: private 'comf' chunks
    ("ComfyUI:prompt", "ComfyUI:workflow"),  # SaveAnimatedWEBP and others: EXIF IFD0 (above)
    ("QuickTime:prompt", "QuickTime:workflow"),  # SaveVideo: MP4/MOV metadata keys (mdta)
)


_PNG_COMFY_LABELS = ("PNG text 'prompt'", "PNG text 'workflow'", "PNG text 'prompt' and 'workflow'")


def _detect_comfyui(raw: _Raw) -> Iterable[GeneratorSignature]:
    for prompt_key, workflow_key in _COMFY_KEYS:
        prompt_text = raw.values.get(prompt_key)
        workflow_text = raw.values.get(workflow_key)
        if not (prompt_text or workflow_text):
            continue
        if prompt_key == "PNG:prompt":
            labels = _PNG_COMFY_LABELS
        else:
            lp = raw.labels.get(prompt_key) or _field_label(prompt_key)
            lw = raw.labels.get(workflow_key) or _field_label(workflow_key)
            labels = (lp, lw, f"{lp} and {lw}")
        yield from _comfy_sigs(prompt_text, workflow_text, labels)


def _comfy_sigs(
    prompt: Any, workflow: Any, labels: tuple[str, str, str]
) -> Iterable[GeneratorSignature]:
    """A ComfyUI signature from its API graph and/or UI workflow (JSON text or parsed JSON);
    ``labels`` name the field for the graph, the workflow and both."""
    graph = _loads(prompt) if isinstance(prompt, str) else prompt
    workflow_data = _loads(workflow) if isinstance(workflow, str) else workflow
    looks_like_graph = isinstance(graph, dict) and any(
        isinstance(v, dict) and "class_type" in v for v in graph.values()
    )
    looks_like_workflow = isinstance(workflow_data, dict) and "nodes" in workflow_data
    if not (looks_like_graph or looks_like_workflow):
        return
    info = _comfy_graph(graph) if looks_like_graph else {}
    where = labels[0] if looks_like_graph else labels[1]
    if looks_like_graph and looks_like_workflow:
        where = labels[2]
    evidence = prompt if looks_like_graph else workflow
    yield _sig(
        "comfyui",
        where,
        evidence if isinstance(evidence, str) else _dumps(evidence),
        model=info.get("model"),
        sampler=info.get("sampler"),
        seed=info.get("seed"),
        steps=info.get("steps"),
        prompt=info.get("prompt"),
        negative_prompt=info.get("negative_prompt"),
    )


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value)[:_MAX_PROMPT]
    except (TypeError, ValueError, RecursionError):
        return ""


_DREAM = re.compile(r'^"(?P<prompt>.*)"\s+(?P<args>-.*)$', re.DOTALL)


def _detect_invokeai(raw: _Raw) -> Iterable[GeneratorSignature]:
    text = raw.values.get("PNG:invokeai_metadata")
    if text:
        data = _loads(text)
        if isinstance(data, dict):
            model = data.get("model")
            if isinstance(model, dict):
                model = model.get("model_name") or model.get("name")
            yield _sig(
                "invokeai",
                "PNG text 'invokeai_metadata'",
                text,
                model=model,
                sampler=data.get("scheduler"),
                seed=data.get("seed"),
                steps=data.get("steps"),
                prompt=data.get("positive_prompt"),
                negative_prompt=data.get("negative_prompt"),
                variant=data.get("app_version") or data.get("generation_mode"),
            )
            return
    text = raw.values.get("PNG:invokeai_graph")
    if text and isinstance(_loads(text), dict):
        yield _sig("invokeai", "PNG text 'invokeai_graph'", text)
        return
    text = raw.values.get("PNG:sd-metadata")
    if text:
        data = _loads(text)
        if isinstance(data, dict):
            image_value = data.get("image")
            image: dict[str, Any] = image_value if isinstance(image_value, dict) else {}
            prompt = image.get("prompt")
            if isinstance(prompt, list) and prompt and isinstance(prompt[0], dict):
                prompt = prompt[0].get("prompt")
            yield _sig(
                "invokeai",
                "PNG text 'sd-metadata'",
                text,
                model=data.get("model_weights") or data.get("model_id") or data.get("model"),
                sampler=image.get("sampler"),
                seed=image.get("seed"),
                steps=image.get("steps"),
                prompt=prompt if isinstance(prompt, str) else None,
                variant=data.get("app_version"),
            )
            return
    text = raw.values.get("PNG:Dream")
    if text:
        m = _DREAM.match(text.strip())
        args = m.group("args") if m else ""
        seed = re.search(r"-S\s*(\d+)", args)
        steps = re.search(r"-s\s*(\d+)", args)
        sampler = re.search(r"-A\s*(\S+)", args)
        yield _sig(
            "invokeai",
            "PNG text 'Dream'",
            text,
            prompt=m.group("prompt") if m else None,
            seed=seed.group(1) if seed else None,
            steps=steps.group(1) if steps else None,
            sampler=sampler.group(1) if sampler else None,
            variant="lstein dream",
        )


def _detect_novelai(raw: _Raw) -> Iterable[GeneratorSignature]:
    yield from _novelai_sigs(
        raw.values.get("PNG:Software", ""),
        raw.values.get("PNG:Source", ""),
        raw.values.get("PNG:Comment", ""),
        raw.values.get("PNG:Description"),
        None,
    )


def _novelai_sigs(
    software: Any, source: Any, comment_text: Any, description: Any, where: str | None
) -> Iterable[GeneratorSignature]:
    """NovelAI's PNG text (Software, Source, Description, Comment JSON) or the same keys in its
    stealth LSB JSON; ``where`` None means the PNG text chunks."""
    software = software if isinstance(software, str) else ""
    source = source if isinstance(source, str) else ""
    if software.strip().lower() != "novelai" and not source.lower().startswith("novelai"):
        return
    comment = _loads(comment_text) if isinstance(comment_text, str) else comment_text
    comment = comment if isinstance(comment, dict) else {}
    yield _sig(
        "novelai",
        where or "PNG text 'Software'",
        software or source,
        model=source or None,
        sampler=comment.get("sampler"),
        seed=comment.get("seed"),
        steps=comment.get("steps"),
        prompt=(description if isinstance(description, str) else None) or comment.get("prompt"),
        negative_prompt=comment.get("uc"),
    )


def _detect_embedded(raw: _Raw) -> Iterable[GeneratorSignature]:
    """Payloads found outside the usual fields: stealth LSB data, a video's comment."""
    for where, text in raw.embedded:
        data = _loads(text) if text.lstrip().startswith("{") else None
        if isinstance(data, dict):
            if "prompt" in data or "workflow" in data:
                # ComfyUI: a JSON object of its PNG text keys, each value itself JSON (text
                # or, in VideoHelperSuite's comment, the workflow as an object).
                labels = (f"{where}: 'prompt'", f"{where}: 'workflow'", where)
                found = list(_comfy_sigs(data.get("prompt"), data.get("workflow"), labels))
                if found:
                    yield from found
                    continue
            if "Software" in data or "Source" in data:
                found = list(
                    _novelai_sigs(
                        data.get("Software"),
                        data.get("Source"),
                        data.get("Comment"),
                        data.get("Description"),
                        where,
                    )
                )
                if found:
                    yield from found
                    continue
        yield from _a1111_sigs(text, where)


_MJ_JOB = re.compile(r"Job ID:\s*[0-9a-f]{8}-[0-9a-f]{4}-", re.IGNORECASE)


def _detect_vendor_markers(raw: _Raw) -> Iterable[GeneratorSignature]:
    """Service names in the fields where tools put their name (not in free captions)."""
    seen: set[str] = set()
    for key, value in raw.values.items():
        low = value.lower()
        if key == "EXIF:MakerNote" and value.startswith("OpenAI--ImageGeneration"):
            seen.add("dall-e")
            yield _sig(
                "dall-e", "EXIF MakerNote (0x927C)", value, variant="OpenAI image generation"
            )
            continue
        if key == "EXIF:UserComment" and "made with openai labs" in low:
            seen.add("dall-e")
            yield _sig("dall-e", "EXIF UserComment (0x9286)", value, model="DALL-E 2")
            continue
        if _MJ_JOB.search(value) and "midjourney" not in seen:
            seen.add("midjourney")
            yield _sig("midjourney", raw.labels.get(key) or _field_label(key), value)
            continue
        if not _is_tool_field(key):
            continue
        for marker, name in _VENDOR_MARKERS:
            if name not in seen and marker.search(value):
                seen.add(name)
                yield _sig(name, raw.labels.get(key) or _field_label(key), value)
    for agent in raw.history_agents:
        for marker, name in _VENDOR_MARKERS:
            if name not in seen and marker.search(agent):
                seen.add(name)
                yield _sig(name, "XMP xmpMM:History softwareAgent", agent)


# Matched with word boundaries, and only in fields where software names itself (never in
# captions, where "runway" or "gemini" are ordinary words).
_VENDOR_MARKERS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), name)
    for pattern, name in (
        (r"\bmidjourney\b", "midjourney"),
        (r"\b(adobe )?firefly\b", "adobe-firefly"),
        (r"\bdall[-·‧ ]?e\b", "dall-e"),
        (r"\bopenai\b", "dall-e"),
        (r"\bchatgpt\b", "dall-e"),
        (r"\bimagen\b", "google-imagen"),
        (r"made with google ai", "google-ai"),
        (r"\bgemini\b", "google-ai"),
        (r"\bstable[ -]?diffusion\b", "stable-diffusion"),
        (r"\bdreamstudio\b", "stable-diffusion"),
        (r"\bleonardo\.ai\b", "leonardo-ai"),
        (r"\bideogram\b", "ideogram"),
        (r"\bbing image creator\b", "bing-image-creator"),
        (r"\bmicrosoft designer\b", "microsoft-designer"),
        (r"\bmeta ai\b", "meta-ai"),
        (r"\bimagined with ai\b", "meta-ai"),
        (r"\bgrok\b", "grok"),
        (r"\brunway(ml)?\b", "runway"),
        (r"\bkrea\b", "krea"),
        (r"\bnightcafe\b", "nightcafe"),
        (r"\bcraiyon\b", "craiyon"),
        (r"\bnovelai\b", "novelai"),
    )
)

# Fields in which software and services name themselves.
_TOOL_FIELDS = re.compile(
    r"^(EXIF:(Software|Make|Model|HostComputer|ProcessingSoftware)"
    r"|PNG:(Software|Source|Generator|Author)"
    r"|(JPEG|WEBP|GIF|TIFF):(Software|Generator|comment)"
    r"|XMP:(xmp:CreatorTool|photoshop:Credit|Iptc4xmpExt:AISystemUsed"
    r"|Iptc4xmpExt:AISystemVersionUsed|tiff:Software|pdf:Producer)"
    r"|IPTC:(OriginatingProgram|Credit)"
    r"|QuickTime:(Encoder|Software|Make|Model))$"
)


def _is_tool_field(key: str) -> bool:
    return bool(_TOOL_FIELDS.match(key))


def _field_label(key: str) -> str:
    source, _, name = key.partition(":")
    kinds = {
        "EXIF": "EXIF",
        "PNG": "PNG text",
        "XMP": "XMP",
        "IPTC": "IPTC IIM",
        "GPS": "GPS",
        "QuickTime": "MP4/MOV",
    }
    return f"{kinds.get(source, source)} '{name}'"


def _detect_source_type(raw: _Raw) -> tuple[str | None, GeneratorSignature | None]:
    for key in ("XMP:Iptc4xmpExt:DigitalSourceType", "XMP:Iptc4xmpExt:DigitalSourceFileType"):
        value = raw.values.get(key)
        if not value:
            continue
        short = value.rstrip("/").rsplit("/", 1)[-1]
        if short in AI_SOURCE_TYPES:
            credit = raw.get("XMP:photoshop:Credit", "XMP:xmp:CreatorTool", "EXIF:Software")
            return short, _sig(
                "iptc-digital-source-type",
                f"XMP '{key.split(':', 1)[1]}'",
                value,
                variant=credit,
            )
        return short, None
    return None, None


_SPECIFIC = {"automatic1111", "comfyui", "invokeai", "novelai", "fooocus", "swarmui"}

_DETECTORS: tuple[Callable[[_Raw], Iterable[GeneratorSignature]], ...] = (
    _detect_a1111_family,
    _detect_comfyui,
    _detect_invokeai,
    _detect_novelai,
    _detect_embedded,
    _detect_vendor_markers,
)


# --- camera and software ----------------------------------------------------------------------

_EDITORS: tuple[tuple[str, str], ...] = (
    ("photoshop", "Adobe Photoshop"),
    ("lightroom", "Adobe Lightroom"),
    ("camera raw", "Adobe Camera Raw"),
    ("gimp", "GIMP"),
    ("affinity", "Affinity Photo"),
    ("pixelmator", "Pixelmator"),
    ("snapseed", "Snapseed"),
    ("capture one", "Capture One"),
    ("darktable", "darktable"),
    ("rawtherapee", "RawTherapee"),
    ("paint.net", "Paint.NET"),
    ("canva", "Canva"),
    ("picsart", "PicsArt"),
    ("facetune", "Facetune"),
    ("luminar", "Luminar"),
    ("acdsee", "ACDSee"),
    ("photoscape", "PhotoScape"),
    ("krita", "Krita"),
    ("topaz", "Topaz"),
    ("photopea", "Photopea"),
    ("remini", "Remini"),
    ("faceapp", "FaceApp"),
    ("meitu", "Meitu"),
)


def _camera(raw: _Raw) -> Camera | None:
    make = raw.get("EXIF:Make", "XMP:tiff:Make", "PNG:Make", "QuickTime:Make")
    model = raw.get("EXIF:Model", "XMP:tiff:Model", "PNG:Model", "QuickTime:Model")
    if not (make or model):
        return None
    return Camera(
        make=_text(make, _MAX_VALUE) if make else None,
        model=_text(model, _MAX_VALUE) if model else None,
        lens=raw.get("EXIF:LensModel", "XMP:aux:Lens", "XMP:exifEX:LensModel"),
        serial=raw.get("EXIF:BodySerialNumber", "XMP:aux:SerialNumber"),
        capture_time=raw.get(
            "EXIF:DateTimeOriginal",
            "XMP:exif:DateTimeOriginal",
            "XMP:photoshop:DateCreated",
            "QuickTime:CreationDate",
        ),
    )


def _software(raw: _Raw) -> list[str]:
    chain: list[str] = []
    for key in (
        "EXIF:Software",
        "XMP:xmp:CreatorTool",
        "XMP:tiff:Software",
        "PNG:Software",
        "EXIF:ProcessingSoftware",
        "IPTC:OriginatingProgram",
        "QuickTime:Software",
        "QuickTime:Encoder",
    ):
        value = raw.values.get(key)
        if value:
            chain.append(_text(value, _MAX_VALUE))
    chain.extend(raw.history_agents)
    return list(dict.fromkeys(s for s in chain if s))


def _editors(software: Iterable[str]) -> list[str]:
    found = []
    for item in software:
        low = item.lower()
        if any(marker in low for marker, _ in _EDITORS):
            found.append(item)
    return list(dict.fromkeys(found))


def _parse_exif_time(value: str | None) -> str | None:
    if not value:
        return None
    m = re.match(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})", value.strip())
    return "{}-{}-{}T{}:{}:{}".format(*m.groups()) if m else None


_PHONE_PIPELINES = (("hdr+", "Google"),)


def _inconsistencies(
    raw: _Raw,
    camera: Camera | None,
    software: list[str],
    editors: list[str],
    sigs: list[GeneratorSignature],
    size: tuple[int, int],
    camera_source: str = "EXIF",
) -> list[str]:
    notes: list[str] = []
    cam = camera.display if camera else ""
    if camera and editors:
        notes.append(
            f"Camera {camera_source} ({cam}) but the file was last saved by an editor "
            f"({editors[-1]}); "
            "the pixels may have been changed since capture."
        )
    for marker, vendor in _PHONE_PIPELINES:
        pipeline = any(marker in s.lower() for s in software)
        if camera and camera.make and pipeline and vendor.lower() not in camera.make.lower():
            notes.append(
                f"The software chain names a {vendor} phone pipeline, but the camera EXIF "
                f"says {cam}."
            )
    if camera and sigs:
        notes.append(
            f"Camera {camera_source} ({cam}) appears together with AI-generator metadata "
            f"({sigs[0].name}); one of them was added or copied."
        )
    captured = _parse_exif_time(camera.capture_time if camera else None)
    modified = _parse_exif_time(raw.get("EXIF:DateTime", "XMP:xmp:ModifyDate"))
    if captured and modified and captured > modified:
        notes.append(
            f"The capture time ({captured}) is later than the modification time ({modified})."
        )
    try:
        ew = int(raw.values.get("EXIF:ExifImageWidth", "0") or 0)
        eh = int(raw.values.get("EXIF:ExifImageHeight", "0") or 0)
    except ValueError:
        ew = eh = 0
    w, h = size
    if camera and ew > 1 and eh > 1 and w > 1 and h > 1 and {ew, eh} != {w, h}:
        notes.append(
            f"EXIF records {ew}x{eh} pixels but the image is {w}x{h}: it was resized or cropped "
            "after capture."
        )
    return notes


# --- entry point ------------------------------------------------------------------------------


def read_metadata(im: Image.Image) -> MetadataFinding:
    """Read and interpret the metadata of an opened Pillow image. Never raises for bad data.

    An animated image is not decoded for it (only what Pillow read when opening it, and the
    first frame's pixels when ``im`` was loaded already)."""
    try:
        raw = _collect(im)
    except Exception as exc:
        log.warning("metadata unreadable: %s", exc)
        return MetadataFinding(error=_text(f"metadata could not be read: {exc}", _MAX_VALUE))
    return _interpret(raw, im.size)


def _interpret(raw: _Raw, size: tuple[int, int], camera_source: str = "EXIF") -> MetadataFinding:
    signatures: list[GeneratorSignature] = []
    for detect in _DETECTORS:
        try:
            signatures.extend(detect(raw))
        except Exception as exc:  # one odd field must not hide the others
            log.debug("%s failed: %s", detect.__name__, exc)
    dst, dst_sig = _detect_source_type(raw)
    if dst_sig is not None:
        signatures.append(dst_sig)
    signatures = _dedupe(signatures)
    if any(s.name in _SPECIFIC for s in signatures):
        # "Stable Diffusion" in NovelAI's Source field adds nothing to the NovelAI finding.
        signatures = [s for s in signatures if s.name != "stable-diffusion"]
    camera = _camera(raw)
    software = _software(raw)
    editors = _editors(software)
    named = [s for s in signatures if s.name != "iptc-digital-source-type"]
    generator = (named or signatures)[0].name if signatures else None
    fields = {k: _text(v, _MAX_VALUE) for k, v in list(raw.values.items())[:_MAX_FIELDS]}
    return MetadataFinding(
        generator=generator,
        ai_declared=bool(signatures),
        digital_source_type=dst,
        signatures=tuple(signatures),
        camera=camera,
        software=tuple(software),
        editors=tuple(editors),
        modified_at=_parse_exif_time(raw.get("EXIF:DateTime", "XMP:xmp:ModifyDate")),
        has_gps=raw.has_gps,
        has_makernote=raw.has_makernote,
        inconsistencies=tuple(
            _inconsistencies(raw, camera, software, editors, named, size, camera_source)
        ),
        fields=fields,
    )


# MP4/MOV fields that carry free text a generator may fill with its parameters or graph.
_VIDEO_TEXT = ("QuickTime:Comment", "QuickTime:Description", "QuickTime:LongDescription")


def read_video_metadata(source: str | os.PathLike[str] | BinaryIO) -> MetadataFinding:
    """Read and interpret the metadata of an MP4 or MOV file (a path, or a binary file open for
    reading) through :mod:`provenance.bmff_metadata`. Never raises for bad data: a file that
    cannot be read gives a finding with ``error`` set; malformed boxes are noted in the
    ``QuickTime:error`` field and what was read before them is used."""
    try:
        if isinstance(source, str | os.PathLike):
            with open(source, "rb") as fh:
                found = read_bmff_metadata(fh)
        else:
            found = read_bmff_metadata(source)
    except Exception as exc:
        log.warning("video metadata unreadable: %s", exc)
        return MetadataFinding(error=_text(f"metadata could not be read: {exc}", _MAX_VALUE))
    raw = _Raw()
    for name, where, value in found.items:
        key = f"QuickTime:{name}"
        if key not in raw.values:
            raw.labels[key] = where
        raw.put(key, value)
    for where, packet in found.xmp:
        try:
            _collect_xmp(packet, raw)
        except Exception as exc:  # pragma: no cover - _collect_xmp guards its parser
            log.debug("XMP in %s unreadable: %s", where, exc)
    if found.problems:
        raw.put("QuickTime:error", "; ".join(found.problems[:3]))
    raw.has_gps = bool(raw.values.get("QuickTime:GPSCoordinates"))
    for key in _VIDEO_TEXT:
        if raw.values.get(key):
            raw.embedded.append((raw.labels[key], raw.values[key]))
    try:
        return _interpret(raw, (0, 0), camera_source="metadata")
    except Exception as exc:  # pragma: no cover - the detectors guard themselves
        log.warning("video metadata not interpreted: %s", exc)
        return MetadataFinding(error=_text(f"metadata could not be read: {exc}", _MAX_VALUE))


def _dedupe(sigs: list[GeneratorSignature]) -> list[GeneratorSignature]:
    """One signature per generator name, keeping the richest (most extracted fields)."""
    best: dict[str, GeneratorSignature] = {}
    for sig in sigs:
        score = sum(1 for v in (sig.model, sig.sampler, sig.seed, sig.prompt) if v)
        old = best.get(sig.name)
        if old is None or score > sum(
            1 for v in (old.model, old.sampler, old.seed, old.prompt) if v
        ):
            best[sig.name] = sig
    order = list(dict.fromkeys(s.name for s in sigs))
    return [best[n] for n in order]
