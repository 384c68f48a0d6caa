from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from provenance.media import (
    CorruptMedia,
    EmptyMedia,
    Limits,
    MediaTooLarge,
    TooManyPixels,
    UnsupportedMedia,
    copy_limited,
    decode_rgb,
    open_media,
    sha256_file,
    sniff,
)
from tests.conftest import sample, shared_path


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00" * 32


@pytest.mark.parametrize(
    ("head", "mime", "kind"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg", "image"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", "image/png", "image"),
        (b"GIF89a\x01\x00", "image/gif", "image"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp", "image"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio/wav", "audio"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "video/x-msvideo", "video"),
        (b"II*\x00\x08\x00\x00\x00", "image/tiff", "image"),
        (b"MM\x00*\x00\x00\x00\x08", "image/tiff", "image"),
        (_ftyp(b"avif", b"mif1"), "image/avif", "image"),
        (_ftyp(b"heic", b"mif1"), "image/heic", "image"),
        (_ftyp(b"isom", b"iso2", b"mp41"), "video/mp4", "video"),
        (_ftyp(b"qt  "), "video/quicktime", "video"),
        (b"\x00\x00\x00\x18stypmsdh\x00\x00\x00\x00msdhmsix", "video/mp4", "video"),
        (_ftyp(b"M4A ", b"isom"), "audio/mp4", "audio"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm", "video/webm", "video"),
        (b"ID3\x03\x00\x00\x00", "audio/mpeg", "audio"),
        (b"fLaC\x00\x00", "audio/flac", "audio"),
        (b"%PDF-1.7\n", "application/pdf", "other"),
        (b"\xff\x0a\xfa\x7f", "image/jxl", "image"),
        (
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg">',
            "image/svg+xml",
            "image",
        ),
    ],
)
def test_sniff_recognises_formats_by_magic(head: bytes, mime: str, kind: str) -> None:
    ftype = sniff(head)
    assert ftype is not None
    assert (ftype.mime, ftype.kind) == (mime, kind)


@pytest.mark.parametrize(
    "head",
    [b"", b"hello world", b"PK\x03\x04zipfile", b"RIFF\x00\x00\x00\x00XXXX", b"\x00" * 64],
)
def test_sniff_rejects_unknown_bytes(head: bytes) -> None:
    assert sniff(head) is None


def test_type_comes_from_bytes_not_extension(tmp_path: Path) -> None:
    disguised = tmp_path / "photo.png"
    disguised.write_bytes(sample("camera_capture.jpg").read_bytes())
    assert open_media(disguised).mime == "image/jpeg"


def test_open_media_reads_dimensions_and_hash() -> None:
    media = open_media(sample("camera_capture.jpg"))
    digest, size = sha256_file(sample("camera_capture.jpg"))
    assert (media.width, media.height, media.sha256, media.size) == (640, 427, digest, size)
    assert media.kind == "image"


def test_open_media_video_reports_duration() -> None:
    media = open_media(sample("signed_video.mp4"))
    assert media.kind == "video"
    assert media.mime == "video/mp4"
    assert (media.width, media.height) == (320, 192)
    assert media.duration_s == pytest.approx(2.0, abs=0.2)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "empty.jpg"
    f.write_bytes(b"")
    with pytest.raises(EmptyMedia):
        open_media(f)


def test_garbage_is_unsupported(tmp_path: Path) -> None:
    f = tmp_path / "x.jpg"
    f.write_bytes(b"this is plainly not an image\n" * 10)
    with pytest.raises(UnsupportedMedia):
        open_media(f)


def test_byte_limit_checked_before_reading(tmp_path: Path) -> None:
    f = tmp_path / "big.jpg"
    f.write_bytes(sample("camera_capture.jpg").read_bytes())
    with pytest.raises(MediaTooLarge):
        open_media(f, Limits(max_bytes=1000))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size; decoding it would allocate gigabytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = zlib.compress(b"\x00" * 64)
    idat_chunk = b"IDAT" + idat
    body += struct.pack(">I", len(idat)) + idat_chunk + struct.pack(">I", zlib.crc32(idat_chunk))
    return b"\x89PNG\r\n\x1a\n" + body


def test_decompression_bomb_refused_from_header(tmp_path: Path) -> None:
    f = tmp_path / "bomb.png"
    f.write_bytes(_png_header_only(60000, 60000))
    with pytest.raises(TooManyPixels):
        open_media(f)


def test_pixel_limit_is_configurable() -> None:
    with pytest.raises(TooManyPixels):
        open_media(sample("camera_capture.jpg"), Limits(max_pixels=640 * 427 - 1))


def test_corrupt_header_is_typed_error(tmp_path: Path) -> None:
    f = tmp_path / "broken.png"
    f.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(CorruptMedia):
        open_media(f)


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        open_media(tmp_path)


def test_decode_rgb_applies_exif_orientation(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    f = tmp_path / "rot.jpg"
    img.save(f, exif=exif)
    arr = decode_rgb(open_media(f))
    assert arr.shape == (40, 20, 3)
    assert arr.dtype == np.uint8


def test_decode_rgb_of_truncated_image_is_corrupt(tmp_path: Path) -> None:
    data = sample("unsigned.jpg").read_bytes()
    f = tmp_path / "trunc.png"
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).save(buf, format="PNG")
    f.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(CorruptMedia):
        decode_rgb(open_media(f))


def test_decode_rgb_refuses_video() -> None:
    with pytest.raises(UnsupportedMedia):
        decode_rgb(open_media(sample("signed_video.mp4")))


def test_copy_limited_stops_at_limit() -> None:
    out = io.BytesIO()
    assert copy_limited(io.BytesIO(b"x" * 100), out, 100) == 100
    with pytest.raises(MediaTooLarge):
        copy_limited(io.BytesIO(b"x" * 101), io.BytesIO(), 100)


@pytest.mark.shared
@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("c2pa/unsigned_sources/sample1.heic", "image/heic"),
        ("c2pa/unsigned_sources/sample1.avif", "image/avif"),
        ("c2pa/unsigned_sources/sample1.webp", "image/webp"),
        ("c2pa/unsigned_sources/sample1.jxl", "image/jxl"),
        ("c2pa/unsigned_sources/sample1.svg", "image/svg+xml"),
        ("c2pa/unsigned_sources/TUSCANY.TIF", "image/tiff"),
        ("c2pa/unsigned_sources/basic.pdf", "application/pdf"),
        ("c2pa/ms/cicadas_trusted.mp3", "audio/mpeg"),
        ("c2pa/py/sample1_signed.wav", "audio/wav"),
        ("c2pa/rs/c.mov", "video/quicktime"),
        ("c2pa/py/file_with_wrong_extension.xyz.jpg", "image/jpeg"),
    ],
)
def test_real_world_formats_sniffed(name: str, mime: str) -> None:
    assert open_media(shared_path(*name.split("/"))).mime == mime


@pytest.mark.shared
def test_heic_from_a_phone_is_decoded() -> None:
    media = open_media(shared_path("c2pa", "unsigned_sources", "sample1.heic"))
    assert (media.mime, media.width, media.height) == ("image/heic", 1440, 960)
    assert decode_rgb(media).shape == (960, 1440, 3)


# --- working copy, orientation, pixel limits (issue 11) ---------------------------------------


def _oriented_png(tmp_path: Path, array: np.ndarray, orientation: int) -> Path:
    im = Image.fromarray(array)
    exif = im.getexif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"
    im.save(path, exif=exif.tobytes())
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_and_native_crops(tmp_path: Path, orientation: int) -> None:
    from PIL import ImageOps

    from provenance.media import decode_image, open_media

    rng = np.random.default_rng(orientation)
    array = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    path = _oriented_png(tmp_path, array, orientation)
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    # working_max_side 16 forces the reduced path, where crops come from the native pixels
    for side in (4096, 16):
        decoded = decode_image(open_media(path), working_max_side=side)
        try:
            assert decoded.native_size == (expected.shape[1], expected.shape[0])
            assert decoded.reduced == (side == 16)
            crop = decoded.native_crop((3, 5, 17, 21))
            assert np.array_equal(crop, expected[5:21, 3:17])
            if side == 4096:
                assert np.array_equal(decoded.oriented, expected)
            else:
                assert max(decoded.oriented.shape[:2]) == 16
        finally:
            decoded.image.close()


def test_large_image_gets_a_bounded_working_copy_and_native_patches(tmp_path: Path) -> None:
    from detectors.base import Detector
    from provenance.media import decode_image, open_media
    from service.config import load_config

    rng = np.random.default_rng(1)
    array = rng.integers(0, 256, (900, 1300, 3), dtype=np.uint8)
    path = tmp_path / "big.png"
    Image.fromarray(array).save(path)
    decoded = decode_image(open_media(path), working_max_side=640)
    try:
        assert decoded.reduced
        assert decoded.oriented.shape == (443, 640, 3)
        registry = load_config(env={}).build_registry()
        patch: Detector = registry.create("synthetic-patch")
        # the patch detector reads native pixels, so reduction does not change its score
        assert patch.analyze_pixels(decoded).score == patch.analyze_image(array).score
    finally:
        decoded.image.close()


def test_pixel_limit_is_checked_on_the_header_before_decoding(tmp_path: Path) -> None:
    from provenance.defaults import DEFAULT_MAX_PIXELS
    from provenance.media import TooManyPixels, open_media
    from tests.hostile import sof_patched_jpeg, write

    assert 2 * (Image.MAX_IMAGE_PIXELS or 0) >= DEFAULT_MAX_PIXELS  # Pillow refuses above
    path = write(tmp_path, "sof.jpg", sof_patched_jpeg(13000, 13000))
    with pytest.raises(TooManyPixels, match="13000x13000"):
        open_media(path)


def test_heif_ispe_boxes_are_checked(tmp_path: Path) -> None:
    from provenance.media import TooManyPixels, heif_extents, open_media
    from tests.hostile import heic, heic_ispe, write

    ok = write(tmp_path, "ok.heic", heic())
    assert heif_extents(ok)
    assert open_media(ok).width == 64
    bomb = write(tmp_path, "bomb.heic", heic_ispe(60000, 60000))
    assert (60000, 60000) in heif_extents(bomb)
    with pytest.raises(TooManyPixels):
        open_media(bomb)


def test_a_decoder_error_of_any_type_is_a_media_error(tmp_path: Path) -> None:
    from provenance.media import (
        CorruptMedia,
        FileType,
        Media,
        TooManyPixels,
        decode_image,
        open_media,
    )
    from tests.hostile import heic, heic_ispe, write

    # libheif refuses the claimed 60000x60000 with a RuntimeError (once a 500 in the API)
    bomb = write(tmp_path, "bomb.heic", heic_ispe(60000, 60000))
    unchecked = Media(bomb, "0" * 64, bomb.stat().st_size, FileType("image/heic", "image", "heic"))
    with pytest.raises(TooManyPixels, match="too large to decode safely"):
        decode_image(unchecked)
    data = bytearray(heic())
    mdat = data.find(b"mdat")
    data[mdat + 8 :] = bytes(len(data) - mdat - 8)  # coded image replaced by zeros
    path = write(tmp_path, "zeros.heic", bytes(data))
    with pytest.raises(CorruptMedia):
        decode_image(open_media(path)).image.close()


def test_heif_has_its_own_lower_pixel_limit(tmp_path: Path) -> None:
    from provenance.media import HEIF_MAX_PIXELS, Limits, TooManyPixels, open_media
    from tests.hostile import heic_ispe, write

    assert Limits().max_pixels > 9000 * 8000 > HEIF_MAX_PIXELS
    with pytest.raises(TooManyPixels, match="9000x8000"):
        open_media(write(tmp_path, "big.heic", heic_ispe(9000, 8000)))
