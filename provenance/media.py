"""Media intake: sniff the type from magic bytes, hash, enforce limits, decode.

Nothing here trusts the file name or a client-supplied Content-Type: the type comes from the
first bytes of the file. Every failure is a :class:`MediaError` subclass with a stable ``code``
so the HTTP layer and the CLI can turn it into a clear message; nothing here raises anything
else for bad input.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Literal

import numpy as np
from PIL import Image

from provenance.defaults import DEFAULT_MAX_FRAME_PIXELS, DEFAULT_MAX_PIXELS
from provenance.errors import ShinganError
from provenance.structure import Incomplete, MissingIndex, incomplete

log = logging.getLogger(__name__)

MediaKind = Literal["image", "video", "audio", "other"]

_CHUNK = 1 << 20


class MediaError(ShinganError):
    """Base of every intake error. ``code`` is stable; ``message`` is for people."""

    code = "media_error"


class UnsupportedMedia(MediaError):
    """The bytes are not a format Shingan analyses."""

    code = "unsupported_media_type"


class CorruptMedia(MediaError):
    """The bytes claim a supported format but cannot be parsed."""

    code = "corrupt_media"


class MediaTooLarge(MediaError):
    """The file is over the configured byte limit."""

    code = "too_large"


class TooManyPixels(MediaError):
    """The image is over the configured pixel limit (decompression-bomb guard)."""

    code = "too_many_pixels"


class EmptyMedia(MediaError):
    """Zero-byte input."""

    code = "empty_media"


#: HEIF/AVIF images are decoded whole by libheif and then copied into Pillow, so they cost 7
#: bytes a pixel at the peak: 120 M pixels reached 1018 MB (benchmarks/bench_memory.py). Phones
#: write at most 48 M pixels; HEIF over 64 M is refused whatever ``max_pixels`` allows.
HEIF_MAX_PIXELS = 64_000_000
_HEIF = frozenset({"image/heic", "image/heif", "image/avif"})
#: Images longer than this are analysed on a reduced working copy (see :func:`decode_image`).
WORKING_MAX_SIDE = 4096


@dataclass(frozen=True)
class Limits:
    """Intake limits. Defaults suit a newsroom: 200 MiB files, 120 megapixel images, 8K video."""

    max_bytes: int = 200 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS


@dataclass(frozen=True)
class FileType:
    """What the magic bytes say: a MIME type and a coarse kind."""

    mime: str
    kind: MediaKind
    extension: str


@dataclass(frozen=True)
class Media:
    """A file accepted for analysis. ``path`` stays owned by the caller."""

    path: Path
    sha256: str
    size: int
    type: FileType
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    #: Why the file looks cut short (:func:`provenance.structure.incomplete`), or None.
    incomplete: Incomplete | None = None

    @property
    def mime(self) -> str:
        return self.type.mime

    @property
    def kind(self) -> MediaKind:
        return self.type.kind


# ISO BMFF major/compatible brands -> (mime, kind, extension)
_FTYP_BRANDS: dict[bytes, tuple[str, MediaKind, str]] = {
    b"avif": ("image/avif", "image", "avif"),
    b"avis": ("image/avif", "image", "avif"),
    b"heic": ("image/heic", "image", "heic"),
    b"heix": ("image/heic", "image", "heic"),
    b"heim": ("image/heic", "image", "heic"),
    b"heis": ("image/heic", "image", "heic"),
    b"mif1": ("image/heif", "image", "heif"),
    b"msf1": ("image/heif", "image", "heif"),
    b"qt  ": ("video/quicktime", "video", "mov"),
    b"M4A ": ("audio/mp4", "audio", "m4a"),
    b"M4B ": ("audio/mp4", "audio", "m4a"),
    b"M4V ": ("video/mp4", "video", "m4v"),
    b"crx ": ("image/x-canon-cr3", "image", "cr3"),
}
_MP4_BRANDS = {
    b"isom",
    b"iso2",
    b"iso3",
    b"iso4",
    b"iso5",
    b"iso6",
    b"mp41",
    b"mp42",
    b"avc1",
    b"dash",
    b"msdh",
    b"msix",
    b"3gp4",
    b"3gp5",
    b"3g2a",
    b"f4v ",
    b"MSNV",
    b"NDAS",
    b"mmp4",
}


def sniff(head: bytes) -> FileType | None:
    """Identify a file from its first bytes (at least 64 are best). ``None`` when unknown."""
    if head.startswith(b"\xff\xd8\xff"):
        return FileType("image/jpeg", "image", "jpg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return FileType("image/png", "image", "png")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return FileType("image/gif", "image", "gif")
    if head[:4] == b"RIFF" and len(head) >= 12:
        sub = head[8:12]
        if sub == b"WEBP":
            return FileType("image/webp", "image", "webp")
        if sub == b"WAVE":
            return FileType("audio/wav", "audio", "wav")
        if sub == b"AVI ":
            return FileType("video/x-msvideo", "video", "avi")
        return None
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return FileType("image/tiff", "image", "tif")
    if head.startswith(b"BM") and len(head) >= 14:
        return FileType("image/bmp", "image", "bmp")
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        return FileType("image/jxl", "image", "jxl")
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"styp"):
        # styp opens a fragmented-MP4 segment (DASH/CMAF); it carries brands like ftyp.
        return _sniff_ftyp(head)
    if len(head) >= 16 and head[4:8] in (b"moov", b"moof") and int.from_bytes(head[:4], "big") >= 8:
        return FileType("video/mp4", "video", "mp4")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        if b"webm" in head[:64]:
            return FileType("video/webm", "video", "webm")
        return FileType("video/x-matroska", "video", "mkv")
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return FileType("audio/mpeg", "audio", "mp3")
    if head.startswith(b"fLaC"):
        return FileType("audio/flac", "audio", "flac")
    if head.startswith(b"OggS"):
        return FileType("audio/ogg", "audio", "ogg")
    if head.startswith(b"%PDF-"):
        return FileType("application/pdf", "other", "pdf")
    if _looks_like_svg(head):
        return FileType("image/svg+xml", "image", "svg")
    return None


def _sniff_ftyp(head: bytes) -> FileType | None:
    box_size = int.from_bytes(head[0:4], "big")
    major = head[8:12]
    end = min(len(head), box_size) if box_size >= 16 else min(len(head), 16)
    brands = [major] + [head[i : i + 4] for i in range(16, end - 3, 4)]
    # Generic HEIF brands (mif1/msf1) often come first; a specific brand (heic, avif) wins.
    generic = {b"mif1", b"msf1"}
    for brand in [b for b in brands if b not in generic] + [b for b in brands if b in generic]:
        if brand in _FTYP_BRANDS:
            mime, kind, ext = _FTYP_BRANDS[brand]
            return FileType(mime, kind, ext)
    if any(b in _MP4_BRANDS for b in brands):
        return FileType("video/mp4", "video", "mp4")
    return None


def _looks_like_svg(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1024].lower()
    if text.startswith(b"<svg"):
        return True
    return text.startswith(b"<?xml") and b"<svg" in text


def sha256_file(path: Path) -> tuple[str, int]:
    """Return the hex sha256 and size of a file, reading it in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def check_type(path: Path) -> FileType:
    """The file's type from its first bytes (a cheap check before queueing work).

    Raises:
        EmptyMedia, UnsupportedMedia.
    """
    with path.open("rb") as fh:
        head = fh.read(4096)
    if not head:
        raise EmptyMedia("the file is empty")
    ftype = sniff(head)
    if ftype is None:
        raise UnsupportedMedia(
            "the file's contents do not match any supported image, video or audio format"
        )
    return ftype


def open_media(path: str | os.PathLike[str], limits: Limits | None = None) -> Media:
    """Accept a file for analysis: check size, sniff the type, hash it, read its dimensions.

    Images are not decoded here, only their headers are read, so the pixel limit is enforced
    before any large allocation.

    Raises:
        FileNotFoundError / IsADirectoryError / PermissionError: the path cannot be read.
        EmptyMedia, MediaTooLarge, UnsupportedMedia, CorruptMedia, TooManyPixels.
    """
    limits = limits or Limits()
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"{p} is a directory")
    size = p.stat().st_size
    if size == 0:
        raise EmptyMedia("the file is empty")
    if size > limits.max_bytes:
        raise MediaTooLarge(f"the file is {size} bytes, over the limit of {limits.max_bytes} bytes")
    with p.open("rb") as fh:
        head = fh.read(4096)
    ftype = sniff(head)
    if ftype is None:
        raise UnsupportedMedia(
            "the file's contents do not match any supported image, video or audio format"
        )
    digest, size = sha256_file(p)
    try:
        cut_short = incomplete(p, ftype.mime)
    except MissingIndex as exc:
        raise CorruptMedia(exc.message) from exc
    width = height = None
    duration = None
    if ftype.kind == "image" and ftype.mime != "image/svg+xml":
        width, height = _image_size(p, ftype, limits)
    elif ftype.kind == "video":
        width, height, duration = _video_info(p)
        if width and height and width * height > limits.max_frame_pixels:
            raise TooManyPixels(
                f"the video's frames are {width}x{height} = {width * height} pixels, "
                f"over the limit of {limits.max_frame_pixels}"
            )
    return Media(p, digest, size, ftype, width, height, duration, cut_short)


# Formats Pillow cannot open without extra plugins; their dimensions are left unknown.
_NO_PILLOW_BASE = frozenset({"image/heic", "image/heif", "image/jxl", "image/x-canon-cr3"})


@functools.cache
def _no_pillow() -> frozenset[str]:
    """Image types Pillow cannot decode here. HEIC/HEIF (what phones save) come through the
    pillow-heif plugin, registered on first use rather than at import."""
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except Exception as exc:  # the plugin is a dependency; its absence only narrows formats
        log.warning("HEIC/HEIF decoding unavailable: %s", exc)
        return _NO_PILLOW_BASE
    return _NO_PILLOW_BASE - {"image/heic", "image/heif"}


def can_decode(mime: str) -> bool:
    """Whether Shingan can decode pixels of this image type."""
    return mime.startswith("image/") and mime != "image/svg+xml" and mime not in _no_pillow()


def _image_size(path: Path, ftype: FileType, limits: Limits) -> tuple[int | None, int | None]:
    """The size the header claims, checked against the pixel limit before any decoding.

    HEIF files are also checked on every ``ispe`` (image spatial extent) box, since the image
    Pillow reports can be a crop of a larger coded image.
    """
    if ftype.mime in _no_pillow():
        return None, None
    if ftype.mime in _HEIF:
        limits = replace(limits, max_pixels=min(limits.max_pixels, HEIF_MAX_PIXELS))
        for w, h in heif_extents(path):
            _check_pixels(w, h, limits, "an image item in the file")
    try:
        with warnings.catch_warnings():
            # Pillow warns on odd but readable files (corrupt EXIF...); the limits are ours.
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                width, height = im.size
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(f"the image has too many pixels to analyse safely ({exc})") from exc
    except Exception as exc:  # plugins (pillow-heif) raise their own types for bad headers
        raise CorruptMedia(f"the {ftype.extension.upper()} header cannot be read: {exc}") from exc
    if width <= 0 or height <= 0:
        raise CorruptMedia(f"the image reports an invalid size {width}x{height}")
    _check_pixels(width, height, limits, "the image")
    return width, height


def _check_pixels(width: int, height: int, limits: Limits, what: str) -> None:
    if width * height > limits.max_pixels:
        raise TooManyPixels(
            f"{what} is {width}x{height} = {width * height} pixels, "
            f"over the limit of {limits.max_pixels}"
        )


_BMFF_MAX_BOXES = 4096


def bmff_boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """ISO BMFF boxes in ``data[start:end]``: (type, payload start, box end). Stops at the first
    malformed box; never reads past ``end``."""
    pos, seen = start, 0
    while pos + 8 <= end and seen < _BMFF_MAX_BOXES:
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        header = 8
        if size == 1 and pos + 16 <= end:
            size, header = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size
        seen += 1


def heif_extents(path: Path, max_meta: int = 4 * 1024 * 1024) -> list[tuple[int, int]]:
    """Every ``ispe`` (width, height) in a HEIF/AVIF file's ``meta/iprp/ipco`` (its first 4 MiB)."""
    with path.open("rb") as fh:
        data = fh.read(max_meta)
    out: list[tuple[int, int]] = []
    for kind, start, end in bmff_boxes(data, 0, len(data)):
        if kind != b"meta":
            continue
        for k2, s2, e2 in bmff_boxes(data, start + 4, end):  # meta is a full box
            if k2 != b"iprp":
                continue
            for k3, s3, e3 in bmff_boxes(data, s2, e2):
                if k3 != b"ipco":
                    continue
                for k4, s4, e4 in bmff_boxes(data, s3, e3):
                    if k4 == b"ispe" and e4 - s4 >= 12:
                        w = int.from_bytes(data[s4 + 4 : s4 + 8], "big")
                        h = int.from_bytes(data[s4 + 8 : s4 + 12], "big")
                        out.append((w, h))
    return out


def _quiet_ffmpeg() -> None:
    """FFmpeg (inside OpenCV) prints its complaints about odd files straight to stderr, where
    they interleave with the CLI's output; the problems reach people as warnings instead.
    ``OPENCV_FFMPEG_LOGLEVEL`` is read when OpenCV's FFmpeg backend starts; a value set by the
    user (for debugging) is kept."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


def _video_info(path: Path) -> tuple[int | None, int | None, float | None]:
    """Width, height and duration from the container, or ``None`` where OpenCV cannot tell.

    A video the decoder cannot open is not an intake error: its C2PA manifest can still be read.
    """
    import cv2

    _quiet_ffmpeg()
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return None, None, None
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) or None
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) or None
        fps = cap.get(cv2.CAP_PROP_FPS)
        frames = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        duration = round(frames / fps, 3) if fps and fps > 0 and frames > 0 else None
        return width, height, duration
    finally:
        cap.release()


#: EXIF orientation -> the numpy view that shows stored pixels as people see them. Checked
#: against Pillow's ``ImageOps.exif_transpose`` for all eight values (tests/test_media.py).
_ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 1)[:, ::-1],
    8: lambda a: np.rot90(a, 1),
}


def orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Stored pixels (``HxWx3``) as people see them under an EXIF orientation (1-8), contiguous."""
    view = _ORIENT.get(orientation, _ORIENT[1])(array)
    return view if view is array else np.ascontiguousarray(view)


def _stored_box(
    box: tuple[int, int, int, int], orientation: int, stored_w: int, stored_h: int
) -> tuple[int, int, int, int]:
    """The stored-pixel box that, oriented, is ``box`` (left, top, right, bottom) as seen."""
    x0, y0, x1, y1 = box
    corners = []
    for x, y in ((x0, y0), (x1 - 1, y1 - 1)):
        sx, sy = {
            1: (x, y),
            2: (stored_w - 1 - x, y),
            3: (stored_w - 1 - x, stored_h - 1 - y),
            4: (x, stored_h - 1 - y),
            5: (y, x),
            6: (y, stored_h - 1 - x),
            7: (stored_w - 1 - y, stored_h - 1 - x),
            8: (stored_w - 1 - y, x),
        }.get(orientation, (x, y))
        corners.append((sx, sy))
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    return min(xs), min(ys), max(xs) + 1, max(ys) + 1


@dataclass(frozen=True)
class DecodedImage:
    """A decoded still image, as the analysis stages need it.

    ``image`` is the loaded Pillow image: its metadata, and the native pixels that
    :meth:`native_crop` reads. ``stored`` holds the pixels in file order (where invisible
    watermarks live) and ``oriented`` as people see them (EXIF orientation applied), both
    ``HxWx3`` uint8 RGB sharing memory when no rotation applies. Both are the *working copy*:
    the native pixels for images up to :data:`WORKING_MAX_SIDE` on their longer side, and a
    reduction to exactly that side for larger ones, so that no stage ever holds a full-size RGB
    copy of a 100-megapixel image (``native_size`` tells which).
    """

    image: Image.Image
    stored: np.ndarray
    oriented: np.ndarray
    orientation: int = 1
    native_size: tuple[int, int] = (0, 0)  # (width, height) as people see it

    @property
    def reduced(self) -> bool:
        return (self.oriented.shape[1], self.oriented.shape[0]) != self.native_size

    def native_crop(self, box: tuple[int, int, int, int]) -> np.ndarray:
        """``(left, top, right, bottom)`` of the image as people see it, at native resolution."""
        if not self.reduced:
            x0, y0, x1, y1 = box
            return self.oriented[y0:y1, x0:x1]
        sw, sh = self.image.size
        region = self.image.crop(_stored_box(box, self.orientation, sw, sh))
        if region.mode != "RGB":
            region = region.convert("RGB")
        return orient(np.asarray(region, dtype=np.uint8), self.orientation)


def _rgb_array(im: Image.Image) -> np.ndarray:
    """Native pixels as RGB without a second full-size Pillow copy for RGB images."""
    return np.asarray(im if im.mode == "RGB" else im.convert("RGB"), dtype=np.uint8)


def _reduced_rgb(im: Image.Image, max_side: int, strip_rows: int = 256) -> np.ndarray:
    """RGB reduced to exactly ``max_side`` on the longer side, in memory bounded by strips.

    Strips of the native image are converted to RGB and box-averaged by the largest whole
    factor that keeps them at least ``max_side`` long (what Pillow's ``reduce`` does to the
    whole image, strip by strip), then area-resized to the exact size.
    """
    import cv2

    w, h = im.size
    factor = max(1, max(w, h) // max_side)
    rows_out = -(-h // factor)
    out = np.empty((rows_out, -(-w // factor), 3), dtype=np.uint8)
    step = strip_rows * factor
    for top in range(0, h, step):
        strip = im.crop((0, top, w, min(h, top + step)))
        if strip.mode != "RGB":
            strip = strip.convert("RGB")
        if factor > 1:
            strip = strip.reduce(factor)
        part = np.asarray(strip, dtype=np.uint8)
        row = top // factor
        out[row : row + part.shape[0]] = part
    scale = max_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized: np.ndarray = cv2.resize(out, size, interpolation=cv2.INTER_AREA)
    return resized


def decode_image(
    media: Media, limits: Limits | None = None, *, working_max_side: int = WORKING_MAX_SIDE
) -> DecodedImage:
    """Decode a still image once for every stage that needs pixels or metadata.

    The native pixels stay in the Pillow image (4 bytes a pixel); the RGB working copy is made
    from them without a second native-size copy (see :class:`DecodedImage`). The pixel limit is
    checked again on the decoded size, which a decoder may change from what the header said.

    Raises:
        UnsupportedMedia: not a still image Pillow can decode.
        TooManyPixels, CorruptMedia: whatever the decoder (or a plugin) raised for the data.
    """
    limits = limits or Limits()
    if media.kind != "image" or not can_decode(media.mime):
        raise UnsupportedMedia(f"{media.mime} cannot be decoded to pixels")

    im: Image.Image | None = None
    try:
        with warnings.catch_warnings():
            # Pillow warns on odd but readable files (corrupt EXIF...); the limits are ours.
            warnings.simplefilter("ignore")
            im = Image.open(media.path)
            if media.mime in _HEIF:
                limits = replace(limits, max_pixels=min(limits.max_pixels, HEIF_MAX_PIXELS))
            _check_pixels(im.size[0], im.size[1], limits, "the image")
            im.load()
            _check_pixels(im.size[0], im.size[1], limits, "the decoded image")
            orientation = im.getexif().get(0x0112, 1)
            if orientation not in _ORIENT:
                orientation = 1
            if max(im.size) > working_max_side:
                stored = _reduced_rgb(im, working_max_side)
            else:
                stored = _rgb_array(im)
            oriented = orient(stored, orientation)
            # Shared by every signal, read by all and written by none: read-only says so (and
            # lets the face detectors know the image again without hashing it).
            oriented.flags.writeable = False
    except BaseException as exc:
        if im is not None:
            im.close()
        if isinstance(exc, MediaError):
            raise
        if isinstance(exc, Image.DecompressionBombError):
            raise TooManyPixels(str(exc)) from exc
        if isinstance(exc, MemoryError) or "security limit" in str(exc).lower():
            raise TooManyPixels(f"the image is too large to decode safely: {exc}") from exc
        if isinstance(exc, Exception):  # decoders and plugins raise many types for bad data
            raise CorruptMedia(f"the image data cannot be decoded: {exc}") from exc
        raise
    w, h = im.size
    native = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    return DecodedImage(im, stored, oriented, orientation, native)


def decode_rgb(media: Media, limits: Limits | None = None) -> np.ndarray:
    """Decode an image to an ``HxWx3`` uint8 RGB array as people see it (EXIF orientation
    applied), reduced to :data:`WORKING_MAX_SIDE` on its longer side if larger.

    Raises:
        UnsupportedMedia: not a still image Pillow can decode.
        TooManyPixels, CorruptMedia.
    """
    decoded = decode_image(media, limits)
    decoded.image.close()
    return decoded.oriented


def copy_limited(src: IO[bytes], dst: IO[bytes], max_bytes: int) -> int:
    """Copy a stream to ``dst`` in chunks, refusing more than ``max_bytes``.

    Used by the HTTP layer so an oversized upload is refused as soon as it crosses the limit,
    without holding it in memory.

    Raises:
        MediaTooLarge: more than ``max_bytes`` arrived.
    """
    total = 0
    for chunk in _chunks(src):
        total += len(chunk)
        if total > max_bytes:
            raise MediaTooLarge(f"the upload is over the limit of {max_bytes} bytes")
        dst.write(chunk)
    return total


def _chunks(src: IO[bytes]) -> Iterator[bytes]:
    while True:
        chunk = src.read(_CHUNK)
        if not chunk:
            return
        yield chunk


@dataclass(frozen=True)
class VideoFrames:
    """Frames sampled from a video, with what the sampling covered."""

    frames: tuple[tuple[float, np.ndarray], ...]  # (time in seconds, HxWx3 uint8 RGB)
    duration_s: float | None
    covered_s: float | None  # how far into the clip the sampling reached
    spacing_s: float | None  # time between sampled frames
    truncated: bool  # the clip was longer than max_duration_s
    timed_out: bool = False  # sampling stopped at its deadline, before every frame was read


def frame_plan(
    fps: float, count: int, *, every_s: float, max_frames: int, max_duration_s: float
) -> tuple[list[int], int]:
    """The frame numbers to sample (one every ``every_s`` seconds over at most
    ``max_duration_s``, spread further apart when that would exceed ``max_frames``) and the
    number of frames the sampling covers."""
    usable = min(count, int(max_duration_s * fps))
    step = max(1, round(fps * every_s))
    indices = list(range(0, usable, step))
    if len(indices) > max_frames:
        picks = np.linspace(0, len(indices) - 1, max_frames).round().astype(int)
        indices = [indices[i] for i in picks]
    return indices, usable


#: A gap between two wanted frames longer than this is crossed by seeking rather than by
#: decoding every frame in it: a seek decodes from the keyframe before the wanted frame, which
#: costs less when keyframes are closer together than the gap (they are every 2-10 s in most
#: footage). Shorter gaps, the 1 s of clips up to 64 s, are read through in one pass.
SEEK_GAP_S = 5.0


class VideoReader:
    """Frames of a video at the times :func:`frame_plan` picks, read in one pass.

    The wanted frames are decoded in order: the frames between them are only grabbed (decoded,
    without the colour conversion), which for frames a second apart costs a third of seeking to
    each (a seek decodes again from the keyframe before it, benchmarks/bench_video.py). Gaps
    longer than :data:`SEEK_GAP_S` are seeked across, as long as seeking turns out cheaper than
    grabbing through. A frame's number comes from its timestamp (as OpenCV's seek finds it), so
    a variable-frame-rate clip is sampled at the same times as by seeking; files without usable
    timestamps fall back to counting frames. The frames are those seeking gave, pixel for pixel
    (tests/test_video_sampling.py).

    Frames longer than ``max_side`` are reduced, so that a 4K clip's frames cost what a 720p
    clip's do. ``times`` (seconds, as the frames read gave them) reads those frames instead of
    the plan's. ``deadline`` (a ``time.monotonic()`` value) stops the reading, checked before
    every frame grabbed; a frame count in the header larger than the file holds ends the reading
    at the real end. A container OpenCV cannot decode gives no frames; never raises for it.
    """

    def __init__(
        self,
        path: Path,
        *,
        every_s: float = 1.0,
        max_frames: int = 64,
        max_duration_s: float = 600.0,
        max_side: int = 1280,
        deadline: float | None = None,
        times: Sequence[float] | None = None,
    ) -> None:
        import cv2

        _quiet_ffmpeg()
        self.max_side = max_side
        self.deadline = deadline
        self.timed_out = False
        self.read_s = 0.0  # time spent reading and converting frames
        self.indices: list[int] = []
        self.fps = 0.0
        self.duration_s: float | None = None
        self.covered_s: float | None = None
        self.spacing_s: float | None = None
        self.truncated = False
        self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            return
        fps = self._cap.get(cv2.CAP_PROP_FPS) or 0.0
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if fps <= 0 or count <= 0:
            return
        self.fps = fps
        self.indices, usable = frame_plan(
            fps, count, every_s=every_s, max_frames=max_frames, max_duration_s=max_duration_s
        )
        if times is not None:  # frames already sampled, again (a page's pictures of them)
            self.indices = sorted({i for i in (max(0, round(t * fps)) for t in times) if i < count})
        self.duration_s = round(count / fps, 3)
        self.covered_s = round(usable / fps, 3)
        spacing = (self.indices[1] - self.indices[0]) / fps if len(self.indices) > 1 else None
        self.spacing_s = round(spacing, 3) if spacing else None
        self.truncated = usable < count

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._cap.release()

    def _late(self) -> bool:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.timed_out = True
        return self.timed_out

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        """(time in seconds, ``HxWx3`` uint8 RGB) of each wanted frame that could be read, in
        order; stops at the end of the file or at the deadline."""
        import cv2

        cap, fps = self._cap, self.fps
        seek_gap = max(1, round(SEEK_GAP_S * fps))
        seeking = True  # until a seek proves slower than grabbing through would have been
        grab_s, grabbed = 0.0, 0  # time spent grabbing, frames grabbed
        pos = -1  # number of the last frame grabbed
        first_ms: float | None = None  # the first frame's timestamp
        last_ms = 0.0
        timestamps = True  # frames numbered by timestamp while they increase
        for index in self.indices:
            if self._late():
                return
            started = time.perf_counter()
            gap = index - pos - 1
            if seeking and pos >= 0 and gap > seek_gap:
                # OpenCV lands on the frame by its timestamp, as the old seek-per-frame did.
                cap.set(cv2.CAP_PROP_POS_FRAMES, index)
                if not cap.grab():
                    return
                pos, last_ms = index, cap.get(cv2.CAP_PROP_POS_MSEC)
                if grabbed and time.perf_counter() - started > gap * grab_s / grabbed:
                    seeking = False
            else:
                while pos < index:
                    if self._late():
                        return
                    if not cap.grab():
                        return  # the real end (the header may claim more frames)
                    grabbed += 1
                    ms = cap.get(cv2.CAP_PROP_POS_MSEC)
                    if first_ms is None:
                        first_ms, pos = ms, pos + 1
                    elif timestamps and ms > last_ms:
                        pos = int((ms - first_ms) * fps / 1000 + 0.5)
                    else:
                        timestamps, pos = False, pos + 1  # none, or not increasing: count
                    last_ms = ms
                grab_s += time.perf_counter() - started
            ok, frame = cap.retrieve()
            if ok and frame is not None:
                rgb = self._convert(frame)
                self.read_s += time.perf_counter() - started
                yield round(index / fps, 3), rgb
            else:
                self.read_s += time.perf_counter() - started

    def _convert(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        fh, fw = frame.shape[:2]
        if max(fh, fw) > self.max_side:
            scale = self.max_side / max(fh, fw)
            frame = cv2.resize(
                frame, (round(fw * scale), round(fh * scale)), interpolation=cv2.INTER_AREA
            )
        rgb: np.ndarray = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        return rgb


def sample_video_frames(
    path: Path,
    *,
    every_s: float = 1.0,
    max_frames: int = 64,
    max_duration_s: float = 600.0,
    max_side: int = 1280,
    deadline: float | None = None,
) -> VideoFrames:
    """Sample frames uniformly: one every ``every_s`` seconds over at most ``max_duration_s``,
    spread further apart when that would exceed ``max_frames`` (:class:`VideoReader`, whose
    frames this holds all at once: the pipeline streams them instead).

    Frames longer than ``max_side`` are reduced so that 64 frames of a 4K clip stay around
    180 MB rather than 1.6 GB in memory.

    ``deadline`` (a ``time.monotonic()`` value) stops the sampling with the frames read so far.
    A container OpenCV cannot decode gives no frames (the caller warns); never raises for it.
    """
    with VideoReader(
        path,
        every_s=every_s,
        max_frames=max_frames,
        max_duration_s=max_duration_s,
        max_side=max_side,
        deadline=deadline,
    ) as reader:
        frames = tuple(reader.frames())
        return VideoFrames(
            frames=frames,
            duration_s=reader.duration_s,
            covered_s=reader.covered_s,
            spacing_s=reader.spacing_s,
            truncated=reader.truncated,
            timed_out=reader.timed_out,
        )
