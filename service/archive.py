"""Zip archives sent as batches, opened defensively.

An archive is refused as a whole (nothing from it is analysed) when it is not a zip, has more
members than a batch may hold, names a member outside the archive (absolute paths, ``..``,
drive letters, symbolic links: "zip slip"), declares more bytes than a batch may hold, or
expands more than ``max_ratio`` times (a zip bomb). Members are then read through a counter, so
an archive that lies about sizes in its headers is caught when it is read, not trusted.
Members are never written under their own names: the caller stores them by content hash.
"""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from provenance.errors import ShinganError

#: Compressed members smaller than this are not ratio-checked one by one (tiny text files
#: compress 1000x and are harmless); the archive as a whole always is.
_RATIO_MIN_BYTES = 1024 * 1024


class MemberUnreadable(ShinganError):
    """One member cannot be unpacked (corrupt data, encryption, an unknown method): an item
    error, not a reason to refuse the whole archive."""

    code = "unreadable"


class ArchiveError(ShinganError):
    """The archive is refused as a whole; ``code`` says why (``too_large``: it expands past the
    budget; ``too_many_files``, ``bad_archive``, ``unsafe_archive``, ``zip_bomb``)."""

    code = "bad_archive"


@dataclass(frozen=True)
class Member:
    name: str
    size: int  # as declared; reading enforces it
    info: zipfile.ZipInfo


def is_zip(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(4)
    return head in (b"PK\x03\x04", b"PK\x05\x06") and zipfile.is_zipfile(path)


def _safe_name(name: str) -> bool:
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":") or "\x00" in text:
        return False
    return ".." not in PurePosixPath(text).parts


def _skipped(name: str) -> bool:
    """Folders, macOS resource forks and hidden files: not media anyone meant to send."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return name.endswith("/") or not parts or parts[0] == "__MACOSX" or parts[-1].startswith(".")


def members(
    zf: zipfile.ZipFile,
    *,
    archive_bytes: int,
    max_members: int,
    max_total_bytes: int,
    max_ratio: float,
) -> list[Member]:
    """The media members of an open archive, after every whole-archive check.

    Raises:
        ArchiveError: the archive is refused (with the HTTP status and code to answer).
    """
    infos = zf.infolist()
    if len(infos) > max_members * 2 + 100:  # folders count too; refuse absurd directories early
        raise ArchiveError(
            code="too_many_files", message=f"the archive has over {max_members} members"
        )
    out: list[Member] = []
    total = 0
    for info in infos:
        if not info.filename:
            raise ArchiveError(
                code="bad_archive", message="the archive has a member without a name"
            )
        if not _safe_name(info.filename):
            raise ArchiveError(
                code="unsafe_archive",
                message=f"the archive names a path outside itself: {info.filename!r}",
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ArchiveError(
                code="unsafe_archive",
                message=f"the archive holds a symbolic link: {info.filename!r}",
            )
        if info.is_dir() or _skipped(info.filename):
            continue
        if info.file_size > _RATIO_MIN_BYTES and info.file_size > max_ratio * max(
            info.compress_size, 1
        ):
            raise ArchiveError(
                code="zip_bomb",
                message=f"{info.filename!r} expands over {max_ratio:g} times; "
                "the archive is refused",
            )
        total += info.file_size
        out.append(Member(info.filename, info.file_size, info))
    if len(out) > max_members:
        raise ArchiveError(
            code="too_many_files", message=f"the archive has over {max_members} files"
        )
    if total > max_total_bytes:
        raise ArchiveError(
            code="too_large", message=f"the archive expands to over {max_total_bytes} bytes"
        )
    if total > _RATIO_MIN_BYTES and total > max_ratio * max(archive_bytes, 1):
        raise ArchiveError(
            code="zip_bomb", message=f"the archive expands over {max_ratio:g} times; it is refused"
        )
    return out


class _Bounded:
    """A member's stream that fails once it gives more than its header declared."""

    def __init__(self, raw: IO[bytes], declared: int, name: str) -> None:
        self.raw, self.left, self.name = raw, declared, name

    def read(self, n: int = -1) -> bytes:
        try:
            chunk = self.raw.read(n if n >= 0 else 1024 * 1024)
        except Exception as exc:  # zlib.error, lzma.LZMAError, EOFError, CRC errors...
            raise MemberUnreadable(f"{type(exc).__name__}: {exc}") from exc
        self.left -= len(chunk)
        if self.left < 0:
            raise ArchiveError(
                code="zip_bomb", message=f"{self.name!r} is larger than its header says; refused"
            )
        return chunk


def open_member(zf: zipfile.ZipFile, member: Member) -> _Bounded:
    """A member's stream, bounded by its declared size.

    Raises:
        MemberUnreadable: it cannot be opened or, when read, unpacked (an ``OSError``).
        ArchiveError: when read, it is larger than its header says.
    """
    try:
        return _Bounded(zf.open(member.info), member.size, member.name)
    except Exception as exc:  # encrypted, unknown compression, a broken local header
        raise MemberUnreadable(f"{type(exc).__name__}: {exc}") from exc


def iter_members(path: Path, **limits: int | float) -> Iterator[tuple[Member, zipfile.ZipFile]]:
    """Open ``path`` and yield its checked members with the open archive."""
    try:
        zf = zipfile.ZipFile(path)
    except Exception as exc:  # BadZipFile, OSError, and struct or value errors on odd headers
        raise ArchiveError(
            code="bad_archive", message=f"the zip archive cannot be read: {exc}"
        ) from exc
    with zf:
        checked = members(zf, archive_bytes=path.stat().st_size, **limits)  # type: ignore[arg-type]
        for m in checked:
            yield m, zf
