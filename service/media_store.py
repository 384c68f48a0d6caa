"""Media waiting for analysis, and media kept by choice.

Batch uploads are written here, named by sha256 (so a file sent twice is stored once), until
every item that needs them has its result; then they are deleted, unless ``media_retention_days``
is above zero, in which case they (and single verifications' files) are kept that many days and
:meth:`MediaStore.sweep` removes them afterwards. Reports are kept regardless (see
:mod:`service.store`).

What needs a file is decided in the database, in the same transaction that deletes it
(:meth:`service.store.holds.HoldRepository.release_media`): unfinished batch items, and *holds*
that an intake takes on each file before putting it in place (so two batches sharing a file
never lose it to each other). A sweep at start and every hour deletes whatever nothing needs:
files left by an intake that was refused or killed, holds of processes that are gone.

Workers on other machines (``shingan worker``) read the same folder, so in a multi-machine
deployment the data dir's ``media`` folder must be shared storage.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol

from provenance.media import MediaTooLarge

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024


class MediaNeeds(Protocol):
    """What the media store asks of the database (``store.holds``,
    :class:`service.store.holds.HoldRepository`)."""

    def release_media(self, sha256: str, delete_file: Callable[[], None]) -> bool: ...

    def needed_shas(self) -> set[str]: ...

    def drop_stale_holds(self, stale: Callable[[str], bool]) -> int: ...


def new_holder() -> str:
    """A name for one intake's holds: this host and process, so that a process killed during
    an intake can be recognised as gone (:func:`holder_is_gone`)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(8)}"


def holder_is_gone(holder: str) -> bool:
    """Whether the process that made these holds, on this host, no longer runs."""
    host, _, rest = holder.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname()[:80] or not pid_text.isdigit():
        return False  # another machine's intake: its holds expire on their own
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


#: Partial uploads in ``tmp`` untouched this long belong to a process that died.
TMP_MAX_AGE_S = 3600.0


class MediaStore:
    def __init__(self, root: Path, retention_days: float = 0.0) -> None:
        self.root = root
        self.retention_s = max(0.0, retention_days) * 86400
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def put_stream(
        self, source: IO[bytes], max_bytes: int, hold: Callable[[str], None] | None = None
    ) -> tuple[str, int]:
        """Copy ``source`` in, hashing as it goes; returns (sha256, size).

        ``hold(sha256)`` is called once the content is known and before the file is put in
        place: it records in the database that an intake needs the file, so that nothing
        deletes it between its arrival and its batch's creation.

        Raises:
            MediaTooLarge: more than ``max_bytes`` arrived (nothing is kept).
        """
        fd, name = tempfile.mkstemp(dir=self.root / "tmp", prefix="in-")
        tmp = Path(name)
        try:
            digest = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise MediaTooLarge(f"the file is over the limit of {max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            sha = digest.hexdigest()
            if hold is not None:
                hold(sha)
            target = self.path(sha)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)  # same content, so replacing an existing copy is harmless
            return sha, size
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def keep_copy(self, src: Path, sha256: str) -> None:
        """Keep a single verification's file when retention is on."""
        if self.retention_s <= 0:
            return
        target = self.path(sha256)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.root / "tmp" / f"keep-{sha256}-{os.getpid()}"
            shutil.copyfile(src, tmp)
            os.replace(tmp, target)

    def _delete(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(sha256).unlink()

    def release(self, sha256: str, needs: MediaNeeds) -> bool:
        """An item finished or an intake gave up: delete the file unless something still needs
        it or retention keeps it. Returns whether it was deleted."""
        if self.retention_s > 0 or not sha256:
            return False
        return needs.release_media(sha256, lambda: self._delete(sha256))

    def sweep(self, needs: MediaNeeds) -> int:
        """Delete every file nothing needs any more: what a crash left (an intake killed
        half-way, a worker killed before releasing) and, with retention, files past it. Also
        forgets holds of dead intakes and removes stale partial uploads. Returns how many
        files were deleted."""
        needs.drop_stale_holds(holder_is_gone)
        needed = needs.needed_shas()
        cutoff = time.time() - self.retention_s
        removed = 0
        for sub in self.root.iterdir():
            if not sub.is_dir():
                continue
            if sub.name == "tmp":
                self._sweep_tmp(sub)
                continue
            for f in sub.iterdir():
                if f.name in needed:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if self.retention_s > 0 and f.stat().st_mtime >= cutoff:
                        continue
                    if needs.release_media(f.name, f.unlink):
                        removed += 1
        return removed

    def _sweep_tmp(self, folder: Path) -> None:
        old = time.time() - TMP_MAX_AGE_S
        for f in folder.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if f.stat().st_mtime < old:
                    f.unlink()

    def start_janitor(self, needs: MediaNeeds, interval_s: float = 3600.0) -> threading.Thread:
        """Sweep every ``interval_s`` in a daemon thread (see :meth:`sweep`)."""

        def loop() -> None:
            while True:
                time.sleep(interval_s)
                try:
                    removed = self.sweep(needs)
                    if removed:
                        log.info("media sweep: deleted %d files no longer needed", removed)
                except Exception:  # the database is busy, say: try again next time
                    log.exception("media sweep failed")

        thread = threading.Thread(target=loop, name="shingan-media-janitor", daemon=True)
        thread.start()
        return thread
