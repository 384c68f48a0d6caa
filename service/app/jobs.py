"""Verifications that take a while (videos, or any file through ``POST /v1/verify?async=1``) run as
jobs: the request returns at once with a URL to come back to, which shows the frames done of
the total, an estimated time left and a way to cancel.

Jobs run in this process, at most ``workers`` at once, each also holding one of the service's
analysis slots (``acquire``/``release``) so that jobs and direct requests share the same CPU
budget. A job is kept in memory for :data:`KEEP_S` after it ends; its report is kept in the
store like any other (``/v1/reports/<id>``), so nothing is lost when the job record goes. A
restart forgets queued and running jobs: their callers see 404 and submit again.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from provenance.errors import ShinganError
from service.app.errors import NotFound
from service.app.verify import Verifier
from service.stages import Cancelled
from service.store import Viewer

log = logging.getLogger(__name__)

#: How long a finished job stays answerable (its report stays in the store for good).
KEEP_S = 3600.0

JobStatus = Literal["queued", "running", "done", "error", "cancelled"]


@dataclass
class Job:
    """One verification running in the background. Mutable: its worker updates it."""

    id: str
    owner: str
    filename: str | None
    created: float
    status: JobStatus = "queued"
    frames_done: int = 0
    frames_total: int = 0
    started: float | None = None
    first_frame: float | None = None
    ended: float | None = None
    report_id: str | None = None
    error: tuple[str, str] | None = None  # (code, message)
    #: Pictures of the upload for its report page (made before the file is deleted).
    pictures: dict[str, Any] = field(default_factory=dict, repr=False)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def frames(self, done: int, total: int) -> None:
        if self.first_frame is None:
            self.first_frame = time.monotonic()  # the pace counts analysis, not reading
        self.frames_done, self.frames_total = done, total

    def cancelled(self) -> bool:
        return self.cancel.is_set()

    @property
    def eta_s(self) -> float | None:
        """Seconds left, from the pace so far (None before the first frame is done)."""
        if self.status != "running" or self.first_frame is None or self.frames_done <= 0:
            return None
        pace = (time.monotonic() - self.first_frame) / self.frames_done
        return round(pace * max(0, self.frames_total - self.frames_done), 1)

    def to_dict(self) -> dict[str, Any]:
        """The job's JSON (``GET /v1/jobs/<id>``)."""
        return {
            "id": self.id,
            "status": self.status,
            "filename": self.filename,
            "progress": {"frames_done": self.frames_done, "frames_total": self.frames_total},
            "eta_s": self.eta_s,
            "report_id": self.report_id,
            "error": None
            if self.error is None
            else {"code": self.error[0], "message": self.error[1]},
        }


class VerifyJobs:
    """The jobs of one service process."""

    def __init__(
        self,
        verifier: Callable[[], Verifier],
        spool_dir: Path,
        *,
        workers: int,
        acquire: Callable[[str], tuple[int, str, str] | None],
        release: Callable[[str], None],
        pictures: Callable[[Path, dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self._verifier = verifier
        self._spool = spool_dir
        self._acquire, self._release = acquire, release
        self._pictures = pictures
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(
        self,
        source: Path,
        *,
        caller: str,
        filename: str | None,
        language: str,
        pictures: bool = False,
        **verify: Any,
    ) -> Job:
        """Take over ``source`` (a received upload: it is moved, then deleted when the job
        ends) and queue its verification for ``caller``. With ``pictures``, the pictures its
        report page shows are made before the file goes (the page's jobs; not the API's)."""
        self._forget_old()
        job = Job(uuid.uuid4().hex, caller, filename, time.monotonic())
        own = self._spool / f"job-{job.id}"
        shutil.move(str(source), own)
        with self._lock:
            self._jobs[job.id] = job
        self._pool.submit(self._run, job, own, language, pictures, verify)
        return job

    def get(self, job_id: str, viewer: Viewer | None) -> Job:
        """Raises: NotFound (also for another caller's job: the two look the same)."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or (viewer is not None and not viewer.may_see(job.owner)):
            raise NotFound(
                "no job with that id: jobs are kept for an hour after they end and are lost "
                "when the service restarts (a finished job's report stays under /v1/reports)"
            )
        return job

    def cancel(self, job_id: str, viewer: Viewer | None) -> Job:
        """Ask the job to stop: a queued one never starts, a running one stops at its next
        frame or signal."""
        job = self.get(job_id, viewer)
        job.cancel.set()
        return job

    def close(self) -> None:
        with self._lock:
            for job in self._jobs.values():
                job.cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(
        self, job: Job, path: Path, language: str, pictures: bool, verify: dict[str, Any]
    ) -> None:
        who = f"job:{job.owner}"
        held = False
        try:
            while not job.cancelled():
                refused = self._acquire(who)
                if refused is None:
                    held = True
                    break
                time.sleep(1.0)  # busy: wait for a slot as a queued job does
            if job.cancelled():
                raise Cancelled("the analysis was cancelled")
            job.status, job.started = "running", time.monotonic()
            done = self._verifier().verify(
                path,
                caller=job.owner,
                filename=job.filename,
                language=language,
                progress=job,
                **verify,
            )
            if pictures and self._pictures is not None:
                job.pictures = self._pictures(path, done.data)
            job.report_id = done.report.id
            job.status = "done"
        except Cancelled:
            job.status = "cancelled"
        except ShinganError as exc:
            job.status, job.error = "error", (exc.code, exc.message)
        except Exception as exc:  # a bug costs this job, never the worker thread
            log.exception("job %s failed", job.id)
            job.status, job.error = "error", ("internal", type(exc).__name__)
        finally:
            job.ended = time.monotonic()
            if held:
                self._release(who)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _forget_old(self) -> None:
        now = time.monotonic()
        with self._lock:
            for key in [k for k, j in self._jobs.items() if j.ended and now - j.ended > KEEP_S]:
                del self._jobs[key]
