"""Batch items analysed in worker processes of the service (the in-process runner, no broker).

Why processes: analysing a 2 MP JPEG without detectors is about 58 ms of Python-heavy work
(C2PA, metadata, PDQ, the watermark decoder), and in the service's threads it shared one GIL
and the service's memory settings. Measured with ``benchmarks/bench_batch.py --kind photos2mp
--provenance-only`` (400 files, 2 cores): the thread runner did 11.6 files/s with one thread
and 16.5 with two under the service's malloc settings (``service.memory``: every large block
mapped and unmapped); with the worker settings 18.4 and 17.2, so the second thread added
nothing (the GIL); the CLI's two worker processes did 28-34. A worker process has its own GIL
and the worker malloc settings, and the service keeps its own.

Each :class:`AnalysisProcess` is one spawned process (never forked: the service runs threads
of onnxruntime, c2pa and waitress) that loads the configuration once (trust, models, the store's
banks) and then analyses one file at a time for the runner thread that owns it. The runner's
threads keep the store work (claiming, reuse of an identical file's report, recording,
completion, webhooks); only ``analyze(path) -> report.to_dict()`` crosses to the process.

Banks: the process reads the same database (a SQLite file through
:mod:`service.banks_sqlite`, others through the store) and looks banks up through
:class:`service.banks.LiveBanks`, which asks for the bank revision at every lookup, so
an entry added through the API after the process started is used by its next item, as in the
service's own threads; the caller's banks (``for_actor``) are chosen in the process per item.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.errors import ShinganError
from provenance.media import MediaError
from service.pipeline import analyze

if TYPE_CHECKING:
    from service.config import Config
    from service.options import AnalyzeOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ItemFailure:
    """Why an item has no report: its error code and message, and a traceback for the log."""

    code: str
    message: str
    detail: str = ""


#: What analysing an item gives: the report's JSON, or why there is none.
Outcome = dict[str, Any] | ItemFailure

#: Analyses one file for a batch item: (options, path, filename, language, actor) -> outcome.
ItemAnalysis = Callable[["AnalyzeOptions", Path, str, str, str], Outcome]


def analyse_item(
    options: AnalyzeOptions, path: Path, filename: str, language: str, actor: str
) -> Outcome:
    """One item's analysis in the item's language with its caller's banks; every exception
    becomes a failure (a bug must not stop a thousand-file batch)."""
    try:
        options = replace(options, language=language, banks=options.banks.for_actor(actor))
        return analyze(path, options, filename=filename).to_dict()
    except MediaError as exc:
        return ItemFailure(exc.code, exc.message)
    except FileNotFoundError:
        return ItemFailure("media_missing", "the uploaded file is no longer stored")
    except Exception as exc:
        return ItemFailure("internal_error", f"{type(exc).__name__}: {exc}", traceback.format_exc())


class WorkerDied(ShinganError):
    """The analysis process ended before it answered (killed, crashed, out of memory)."""

    code = "worker_died"


def _child_main(
    conn: Connection, config: Config, share_cores: bool, analysis: ItemAnalysis
) -> None:
    """The worker process: load once, then answer one request at a time until the service
    closes its end of the pipe (or ends)."""
    from service.memory import tune_malloc

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the service's to handle
    tune_malloc(worker=True)  # one file at a time: keep freed memory for the next
    options: AnalyzeOptions | None = None
    failure: ItemFailure | None = None
    try:
        if share_cores:  # each process takes one core's worth of library threads
            import cv2

            from provenance.pdq import use_helper_thread

            cv2.setNumThreads(1)
            use_helper_thread(False)
            if config.onnx_threads == 0:
                config = config.model_copy(update={"onnx_threads": 1})
        from service.banks_sqlite import database_banks

        # The service's SQLite database is read with sqlite3 (no SQLAlchemy to import); its
        # banks stay current as entries are added, as through the store.
        options = config.analyze_options(bank_source=database_banks(config))
    except Exception as exc:  # answered to the first request, then this process ends
        failure = ItemFailure(
            "internal_error",
            f"the analysis process could not start: {type(exc).__name__}: {exc}",
            traceback.format_exc(),
        )
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the service closed its end: stopped, idle, or gone
        if options is None:
            assert failure is not None
            conn.send((failure, False))  # and this process ends: the next item starts another
            return
        path, filename, language, actor = request
        outcome = analysis(options, Path(path), filename, language, actor)
        try:
            conn.send((outcome, True))
        except OSError:
            return


class AnalysisProcess:
    """One worker process: started on first use, started again after it died. One thread at a
    time may call :meth:`analyse` and :meth:`close` (the runner hands the object from thread
    to thread); :meth:`terminate` may be called from any thread."""

    def __init__(
        self,
        config: Config,
        *,
        name: str,
        share_cores: bool = False,
        analysis: ItemAnalysis = analyse_item,
    ) -> None:
        self.config = config
        self.name = name
        self.share_cores = share_cores
        self.analysis = analysis
        self._lock = threading.Lock()
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        self._pid: int | None = None
        self.started = 0  # processes started so far (the first, and each replacement)

    @property
    def pid(self) -> int | None:
        """The current process's id (None when there is none)."""
        with self._lock:
            return self._pid

    def _start(self) -> Connection:
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(
            target=_child_main,
            args=(theirs, self.config, self.share_cores, self.analysis),
            name=self.name,
            daemon=True,  # ended with the service (multiprocessing's exit handler)
        )
        proc.start()
        theirs.close()  # so that the process's death reads as end-of-file here
        with self._lock:
            self._proc, self._conn, self._pid = proc, ours, proc.pid
        self.started += 1
        return ours

    def warm(self) -> None:
        """Start the process now if none is running: it loads (interpreter, imports,
        configuration) while the caller goes on. Same rule as :meth:`analyse`: one thread at
        a time."""
        if self._conn is not None and self._proc is not None and self._proc.exitcode is None:
            return
        if self._conn is not None:
            self._reap()
        self._start()

    def analyse(self, path: Path, filename: str, language: str, actor: str) -> Outcome:
        """The item's outcome, from the process (started if none is running).

        Raises:
            WorkerDied: the process ended before it answered; it is gone, and the next call
                starts another.
        """
        conn = self._conn
        if conn is not None and self._proc is not None and self._proc.exitcode is not None:
            self._reap()  # it died while idle (killed, say): no try of this item is lost
            conn = None
        if conn is None:
            conn = self._start()
        try:
            conn.send((str(path), filename, language, actor))
            outcome: Outcome
            outcome, going_on = conn.recv()
        except (EOFError, OSError) as exc:
            raise WorkerDied(self._reap()) from exc
        if not going_on:  # it could not load its configuration and is ending
            self.close()
        return outcome

    def _reap(self) -> str:
        """Forget a process that stopped answering, ending it if need be; how it ended."""
        proc, conn = self._take()
        if conn is not None:
            conn.close()
        if proc is None:
            return "no process"
        code = _end(proc, 5.0)
        if code is not None and code < 0:
            return f"ended by signal {-code}"
        return f"exit code {code}"

    def _take(self) -> tuple[BaseProcess | None, Connection | None]:
        with self._lock:
            proc, conn = self._proc, self._conn
            self._proc, self._conn, self._pid = None, None, None
        return proc, conn

    def close(self, timeout: float = 5.0) -> None:
        """End an idle process: closing the pipe makes it return; one that does not in
        ``timeout`` is terminated, then killed."""
        proc, conn = self._take()
        if conn is not None:
            conn.close()
        if proc is not None:
            _end(proc, timeout)

    def terminate(self) -> None:
        """End the process at once (SIGTERM), from any thread: its owner, if waiting for an
        answer, gets :class:`WorkerDied`."""
        with self._lock:
            if self._proc is not None and self._proc.exitcode is None:
                self._proc.terminate()


def _end(proc: BaseProcess, timeout: float) -> int | None:
    """Wait up to ``timeout`` for ``proc`` to end, then terminate it, then kill it; its exit
    code (None if even that failed: it is left to the exit handler)."""
    proc.join(timeout)
    for stop in (proc.terminate, proc.kill):
        if proc.exitcode is not None:
            break
        stop()
        proc.join(timeout)
    code = proc.exitcode
    if code is not None:
        proc.close()
    return code
