"""What the blueprints share: the application's state and the upload intake."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from flask import current_app

from provenance.media import copy_limited
from service.app.banks import Banks
from service.app.batches import Batches
from service.app.jobs import VerifyJobs
from service.app.keys import Keys
from service.app.reports import Reports
from service.app.verify import Verifier
from service.config import Config
from service.jobs import CeleryRunner, InProcessRunner
from service.media_store import MediaStore
from service.pipeline import AnalyzeOptions
from service.store import Store
from service.web.counters import ConcurrencyLimiter, Metrics, RateLimiter
from service.web.gate import Gate


@dataclass(frozen=True)
class AppState:
    """Per-application objects, kept in ``app.extensions['shingan']``."""

    config: Config
    options: AnalyzeOptions
    upload_dir: Path
    store: Store
    media: MediaStore
    runner: InProcessRunner | CeleryRunner
    limiter: RateLimiter
    metrics: Metrics
    keys_required: bool
    gate: Gate
    slots: ConcurrencyLimiter
    jobs: VerifyJobs

    def verifier(self) -> Verifier:
        """The verify flow with this application's pipeline, store and media folder."""
        return Verifier(self.options, self.store, self.media)

    def banks(self) -> Banks:
        """The banks of this application's store."""
        return Banks(self.store, self.options.limits, self.upload_dir)

    def reports(self) -> Reports:
        """The reports kept in this application's store."""
        return Reports(self.store)

    def keys(self) -> Keys:
        """The API keys of this application's store."""
        return Keys(self.store)

    def batches(self) -> Batches:
        """Batches on this application's store, media folder and runner."""
        cfg = self.config
        return Batches(
            store=self.store,
            media=self.media,
            runner=self.runner,
            upload_dir=self.upload_dir,
            max_file_bytes=self.options.limits.max_bytes,
            max_files=cfg.max_batch_files,
            max_batch_bytes=cfg.max_batch_bytes,
            max_zip_ratio=cfg.max_zip_ratio,
            webhook_allowed_hosts=cfg.webhook_allowed_hosts,
            owners_only=self.keys_required,
        )


@contextlib.contextmanager
def received_upload(source: IO[bytes], prefix: str) -> Iterator[tuple[Path, int]]:
    """Stream an upload to a temporary file in the data dir, refusing it past the size limit,
    and delete it afterwards whatever happens (media is never kept). Yields (path, size).

    Raises:
        provenance.media.MediaTooLarge: the upload crossed the limit.
    """
    st = state()
    fd, name = tempfile.mkstemp(dir=st.upload_dir, prefix=prefix)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            size = copy_limited(source, out, st.options.limits.max_bytes)
        yield path, size
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def state() -> AppState:
    """The running application's :class:`AppState`."""
    st: AppState = current_app.extensions["shingan"]
    return st
