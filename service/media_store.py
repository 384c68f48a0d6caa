"""Media waiting for analysis, and media kept by choice.

Batch uploads are written here, named by sha256 (so a file sent twice is stored once), until
every item that needs them has its result; then they are deleted, unless ``media_retention_days``
is above zero, in which case they (and single verifications' files) are kept that many days and
:meth:`MediaStore.purge` removes them afterwards. Reports are kept regardless (see
:mod:`service.store`).

Workers on other machines (``shingan worker``) read the same folder, so in a multi-machine
deployment the data dir's ``media`` folder must be shared storage.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from provenance.media import MediaTooLarge

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024


class MediaStore:
    def __init__(self, root: Path, retention_days: float = 0.0) -> None:
        self.root = root
        self.retention_s = max(0.0, retention_days) * 86400
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def put_stream(self, source: IO[bytes], max_bytes: int) -> tuple[str, int]:
        """Copy ``source`` in, hashing as it goes; returns (sha256, size).

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

    def release(self, sha256: str, still_needed: bool) -> None:
        """Called when an item finished: delete its media unless needed or retained."""
        if still_needed or self.retention_s > 0:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path(sha256).unlink()

    def purge(self, needed: set[str] | None = None) -> int:
        """Delete retained media older than the retention period; returns how many."""
        if self.retention_s <= 0:
            return 0
        cutoff = time.time() - self.retention_s
        removed = 0
        for sub in self.root.iterdir():
            if sub.name == "tmp" or not sub.is_dir():
                continue
            for f in sub.iterdir():
                if needed and f.name in needed:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if f.stat().st_mtime < cutoff:
                        f.unlink()
                        removed += 1
        return removed

    def start_janitor(
        self, needed: Callable[[], set[str]], interval_s: float = 3600.0
    ) -> threading.Thread | None:
        """Purge expired media every ``interval_s`` in a daemon thread (when retention is on).

        ``needed`` gives the sha256 of media that unfinished batch items still need.
        """
        if self.retention_s <= 0:
            return None

        def loop() -> None:
            while True:
                time.sleep(interval_s)
                try:
                    removed = self.purge(needed())
                    if removed:
                        log.info("retention: deleted %d expired media files", removed)
                except Exception:  # the database is busy, say: try again next time
                    log.exception("retention purge failed")

        thread = threading.Thread(target=loop, name="shingan-media-janitor", daemon=True)
        thread.start()
        return thread
