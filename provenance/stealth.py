""" "Stealth" generation info: parameters hidden in the least significant bits of the pixels.

Written by the Automatic1111 extension ashen-sensored/sd_webui_stealth_pnginfo
(scripts/stealth_pnginfo.py), by Forge itself (lllyasviel/stable-diffusion-webui-forge,
modules/stealth_infotext.py), by NovelAI (NovelAI/novelai-image-metadata, nai_meta_writer.py)
and by ComfyUI's catboxanon/comfyui_stealth_pnginfo (stealth.py, which calls the A1111 code).
The layout, read here exactly as those readers do:

* the pixels are visited column by column (``for x in range(width): for y in range(height)``);
* ``alpha`` mode takes one bit a pixel, the alpha value's lowest; ``rgb`` mode three, the
  lowest bits of red, green and blue in that order;
* the bit stream is a 15-byte signature, ``stealth_pnginfo`` or ``stealth_pngcomp`` (alpha) and
  ``stealth_rgbinfo`` or ``stealth_rgbcomp`` (rgb), then the payload's length *in bits* as a
  32-bit big-endian number, then the payload: UTF-8 text, gzip-compressed for the ``comp``
  signatures. Bytes are written most significant bit first.

The payload is A1111 ``parameters`` text, NovelAI's JSON of its PNG text keys, or ComfyUI's
JSON of ``prompt`` and ``workflow``: :mod:`provenance.metadata` interprets it.

Cost: only the first 152 pixels (one column of most images) are looked at unless they hold a
signature, so an image without stealth data costs next to nothing. Only decoded pixels are read:
``analyze`` decodes every image before reading its metadata, and Pillow decodes a PNG to read
its text chunks anyway; an undecoded WebP is not decoded for this (nor are an animation's other
frames). Reading is bounded by the declared length, :data:`MAX_PAYLOAD` bytes read and
:data:`MAX_TEXT` bytes of text after decompression. Only lossless data keeps these bits: PNG,
and WebP (lossless, or the alpha plane of a lossy one).
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image

Channel = Literal["alpha", "rgb"]

_SIGNATURES: dict[bytes, tuple[Channel, bool]] = {
    b"stealth_pnginfo": ("alpha", False),
    b"stealth_pngcomp": ("alpha", True),
    b"stealth_rgbinfo": ("rgb", False),
    b"stealth_rgbcomp": ("rgb", True),
}
_SIG_BITS = 15 * 8
_HEADER_BITS = _SIG_BITS + 32
#: Pixels that hold the signature and length in either mode (alpha needs the most).
_HEADER_PIXELS = _HEADER_BITS

#: Largest payload read from the pixels (bytes), and largest text kept after decompression.
#: ComfyUI writes its workflow uncompressed; the JSON reader's own bound is the same 2 MB.
MAX_PAYLOAD = 2_000_000
MAX_TEXT = 2_000_000
#: Formats whose pixels can carry the bits.
FORMATS = frozenset({"PNG", "WEBP"})


@dataclass(frozen=True)
class StealthInfo:
    """Stealth data found in an image's pixels."""

    signature: str  # stealth_pnginfo, stealth_pngcomp, stealth_rgbinfo, stealth_rgbcomp
    channel: Channel
    compressed: bool
    text: str  # the decoded payload ("" when it could not be read; ``error`` says why)
    declared_bits: int
    truncated: bool = False  # only part of the declared payload (or of its text) was read
    error: str | None = None


def read_stealth(im: Image.Image) -> StealthInfo | None:
    """The stealth data in ``im``'s decoded pixels, or None when there is none (or ``im`` has
    not been decoded: see the module's notes). Never raises for odd pixel data."""
    if im.format not in FORMATS or im.mode not in ("RGB", "RGBA"):
        return None
    # Pillow keeps the decoded pixels in ``_im`` (None until ``load()``); the public ``im``
    # property would decode them.
    if getattr(im, "_im", None) is None:
        return None
    width, height = im.size
    if width * height * 3 < _HEADER_BITS:
        return None
    head = _pixels(im, min(_HEADER_PIXELS, width * height))
    if head is None:
        return None
    for channel in ("alpha", "rgb") if head.shape[1] == 4 else ("rgb",):
        bits = _bits(head, channel)
        if len(bits) < _HEADER_BITS:
            continue
        sig = np.packbits(bits[:_SIG_BITS]).tobytes()
        found = _SIGNATURES.get(sig)
        if found is None or found[0] != channel:
            continue
        declared = int.from_bytes(np.packbits(bits[_SIG_BITS:_HEADER_BITS]).tobytes(), "big")
        return _read_payload(im, sig.decode("ascii"), channel, found[1], declared)
    return None


def _read_payload(
    im: Image.Image, signature: str, channel: Channel, compressed: bool, declared: int
) -> StealthInfo:
    width, height = im.size
    per_pixel = 1 if channel == "alpha" else 3
    available = width * height * per_pixel - _HEADER_BITS
    wanted = min(declared, available, MAX_PAYLOAD * 8)
    wanted -= wanted % 8
    truncated = wanted < declared - declared % 8

    def info(text: str = "", error: str | None = None, cut: bool = False) -> StealthInfo:
        return StealthInfo(signature, channel, compressed, text, declared, truncated or cut, error)

    if wanted <= 0:
        return info(error="the stealth data declares no payload")
    pixels = _pixels(im, math.ceil((_HEADER_BITS + wanted) / per_pixel))
    if pixels is None:  # pragma: no cover - only for modes excluded above
        return info(error="the stealth data could not be read")
    payload = np.packbits(_bits(pixels, channel)[_HEADER_BITS : _HEADER_BITS + wanted]).tobytes()
    cut = False
    if compressed:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip
        try:
            data = inflater.decompress(payload, MAX_TEXT + 1)
        except zlib.error:
            return info(error="the stealth data is not valid gzip")
        cut = len(data) > MAX_TEXT or not inflater.eof
        data = data[:MAX_TEXT]
    else:
        data = payload[:MAX_TEXT]
        cut = len(payload) > MAX_TEXT
    return info(data.decode("utf-8", "replace").replace("\x00", ""), cut=cut)


def _bits(pixels: np.ndarray, channel: Channel) -> np.ndarray:
    """The LSB stream of ``pixels`` (N x channels, in column-major image order)."""
    if channel == "alpha":
        return pixels[:, 3] & 1
    return (pixels[:, :3] & 1).reshape(-1)


def _pixels(im: Image.Image, count: int) -> np.ndarray | None:
    """The first ``count`` pixels of a decoded image, column by column, as N x channels: only
    the columns holding them are copied."""
    width, height = im.size
    columns = min(width, math.ceil(count / height))
    region = np.asarray(im.crop((0, 0, columns, height)))
    if region.ndim != 3:
        return None
    return region.transpose(1, 0, 2).reshape(-1, region.shape[2])[:count]


def write_stealth(
    im: Image.Image, text: str, *, channel: Channel = "alpha", compressed: bool = True
) -> Image.Image:
    """A copy of ``im`` carrying ``text`` as the writers above do (for tests and fuzz seeds).

    Alpha mode sets the alpha channel to 255 first, as A1111's writer does; NovelAI's and
    Forge's keep other alpha values, which only the lowest bit of matters here.
    """
    payload = text.encode("utf-8")
    if compressed:
        import gzip

        payload = gzip.compress(payload)
    signature = next(k for k, v in _SIGNATURES.items() if v == (channel, compressed))
    stream = signature + struct.pack(">I", len(payload) * 8) + payload
    bits = np.unpackbits(np.frombuffer(stream, dtype=np.uint8))
    out = im.convert("RGBA" if channel == "alpha" else "RGB")
    if channel == "alpha":
        out.putalpha(255)
    width, height = out.size
    per_pixel = 1 if channel == "alpha" else 3
    if len(bits) > width * height * per_pixel:
        raise ValueError("the image is too small for this text")
    arr: Any = np.array(out)
    column_major = arr.transpose(1, 0, 2).reshape(-1, arr.shape[2]).copy()
    if channel == "alpha":
        column_major[: len(bits), 3] = (column_major[: len(bits), 3] & 0xFE) | bits
    else:
        flat = column_major[:, :3].reshape(-1)
        flat[: len(bits)] = (flat[: len(bits)] & 0xFE) | bits
        column_major[:, :3] = flat.reshape(-1, 3)
    arr = column_major.reshape(width, height, arr.shape[2]).transpose(1, 0, 2)
    return Image.fromarray(np.ascontiguousarray(arr))
