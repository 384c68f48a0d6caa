"""How an analysis runs its stages: timed, under a deadline, and guarded.

Every stage runs under the configured deadline; an exception or an overrun in one costs that
signal (a warning, or a ``timed_out`` abstention), never the report. Signals
(:mod:`service.signals`) run their work through :class:`Run`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from provenance.errors import ShinganError
from service.abstentions import Abstention

if TYPE_CHECKING:
    from service.options import AnalyzeOptions

log = logging.getLogger(__name__)

T = TypeVar("T")


class Progress(Protocol):
    """Told how far a long analysis has got, and asked whether to stop (a job's cancel)."""

    def frames(self, done: int, total: int) -> None: ...

    def cancelled(self) -> bool: ...


class Cancelled(ShinganError):
    """The analysis was stopped on request."""

    code = "cancelled"


class Timer:
    """Milliseconds per named stage (a report's ``timings_ms``)."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round((time.perf_counter() - start) * 1000, 3)


class StageTimeout(ShinganError):
    """A stage outlived its deadline; its thread was left to finish on its own."""

    code = "timed_out"


_abandoned_lock = threading.Lock()
_abandoned = 0


def abandoned_stages() -> int:
    """Stages that timed out and are still running in their threads (in this process).

    The service counts them as busy analysis slots until they end, so runaway work is never
    more than the slots allow."""
    with _abandoned_lock:
        return _abandoned


class _StageThread:
    """A stage's work in a daemon thread, with the time it took there."""

    def __init__(self, name: str, run: Callable[[], Any]) -> None:
        self.name = name
        self.box: dict[str, Any] = {}
        self.done = threading.Event()
        self.started = time.monotonic()
        threading.Thread(
            target=self._target, args=(run,), name=f"shingan-stage-{name}", daemon=True
        ).start()

    def _target(self, run: Callable[[], Any]) -> None:
        global _abandoned
        start = time.perf_counter()
        try:
            self.box["value"] = run()
        except BaseException as exc:  # handed to the caller, or dropped if it left
            self.box["error"] = exc
        finally:
            self.box["ms"] = round((time.perf_counter() - start) * 1000, 3)
            with _abandoned_lock:
                self.done.set()
                if self.box.get("abandoned"):
                    _abandoned -= 1
                    log.warning("stage %s finished after its deadline", self.name)

    def abandon(self) -> bool:
        """Count the thread as abandoned if it is still running (until it ends); whether it
        was still running."""
        global _abandoned
        with _abandoned_lock:
            if self.done.is_set():
                return False
            if not self.box.get("abandoned"):
                self.box["abandoned"] = True
                _abandoned += 1
            return True

    def wait(self, timeout_s: float | None) -> Any:
        """The value, once the thread ends within ``timeout_s`` (None: no limit).

        Raises:
            StageTimeout: the time passed first (the thread is counted as abandoned).
            Exception: whatever the work raised.
        """
        if not self.done.wait(timeout_s) and self.abandon():
            raise StageTimeout(self.name)
        if "error" in self.box:
            raise self.box["error"]
        return self.box["value"]


def run_with_deadline(name: str, timeout_s: float, run: Callable[[], T]) -> T:
    """``run()`` in a helper thread, waiting at most ``timeout_s`` for it.

    Python cannot stop a thread that is inside a decoder or a model, so a stage that overruns
    is abandoned: the caller goes on without its result and the thread ends when the work does.

    Raises:
        StageTimeout: the deadline passed first.
        Exception: whatever ``run`` raised.
    """
    if timeout_s <= 0:
        return run()
    value: T = _StageThread(name, run).wait(timeout_s)
    return value


class Pending(Generic[T]):
    """A stage started ahead of the point that needs its result, so that it overlaps the
    stages in between (:meth:`Run.start`). :meth:`result` waits for it under the stage's
    deadline, counted from its start, and guards it as :meth:`Run.stage` does; the stage's
    timing is its own work's time."""

    def __init__(self, run: Run, stage: str, work: Callable[[], T], label: str | None) -> None:
        self._run, self._label = run, label
        self._thread = _StageThread(stage, work)

    def value(self) -> T:
        """The result, as :meth:`Run.raw` gives it (timed, under the deadline).

        Raises:
            StageTimeout: the deadline passed first.
            Exception: whatever the work raised.
        """
        run, thread = self._run, self._thread
        limit = run.options.stage_timeout_s
        remaining = None if limit <= 0 else max(0.0, thread.started + limit - time.monotonic())
        try:
            value: T = thread.wait(remaining)
            return value
        finally:
            waited = round((time.monotonic() - thread.started) * 1000, 3)
            run.timer.ms[thread.name] = thread.box.get("ms", waited)

    def result(self) -> T | None:
        """The result, guarded as :meth:`Run.stage` does: None when it failed or overran."""
        try:
            return self.value()
        except StageTimeout:
            self._run.overran(self._label or self._thread.name)
        except Exception:
            log.exception("stage %s failed", self._thread.name)
            self._run.warnings.append(
                f"the {self._label or self._thread.name} stage failed on this file; "
                "its result is missing"
            )
        return None


class Helper:
    """``run()`` in a daemon thread that its caller may give up on: :meth:`abandon` counts it
    among :func:`abandoned_stages` until it ends, as :func:`run_with_deadline` does for a stage
    that overruns. ``run`` must not raise (it reports its own failures)."""

    def __init__(self, name: str, run: Callable[[], None]) -> None:
        self._thread = _StageThread(name, run)

    def abandon(self) -> None:
        """Go on without waiting: a thread still running is counted until it ends."""
        self._thread.abandon()

    def join(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds; whether the thread has ended."""
        return self._thread.done.wait(timeout)


class Run:
    """One analysis: its timings, warnings and abstentions, and how each stage is run.

    Every stage runs under the configured deadline; an exception or an overrun in one costs
    that signal (a warning, or a ``timed_out`` abstention), never the report.
    """

    def __init__(self, options: AnalyzeOptions) -> None:
        self.options = options
        self.timer = Timer()
        self.warnings: list[str] = []
        self.abstentions: list[Abstention] = []
        self.timed_out: set[str] = set()

    def deadline(self) -> float:
        """A monotonic time for stages that stop themselves (frame loops)."""
        return time.monotonic() + self.options.stage_timeout_s

    def overran(self, stage: str, what: str = "") -> None:
        self.timed_out.add(stage)
        self.abstentions.append(
            Abstention(
                "timed_out",
                f"the {stage} stage took longer than {self.options.stage_timeout_s:g} s and was "
                f"stopped{what}; its signal is missing",
            )
        )

    def start(self, stage: str, run: Callable[[], T], *, label: str | None = None) -> Pending[T]:
        """``run()`` begun now in its own thread; :meth:`Pending.result` collects it."""
        return Pending(self, stage, run, label)

    def raw(self, stage: str, run: Callable[[], T], *, grace_s: float = 0.0) -> T:
        """Timed and under the deadline; exceptions (StageTimeout among them) propagate."""
        with self.timer.stage(stage):
            return run_with_deadline(stage, self.options.stage_timeout_s + grace_s, run)

    def stage(
        self, stage: str, run: Callable[[], T], *, label: str | None = None, grace_s: float = 0.0
    ) -> T | None:
        """Timed, under the deadline, guarded: None when it failed or overran."""
        try:
            return self.raw(stage, run, grace_s=grace_s)
        except StageTimeout:
            self.overran(label or stage)
        except Exception:
            log.exception("stage %s failed", stage)
            self.warnings.append(
                f"the {label or stage} stage failed on this file; its result is missing"
            )
        return None


def guard(stage: str, warnings: list[str], run: Callable[[], T]) -> T | None:
    """Run one step; a bug or an unforeseen input in it costs that signal, not the report."""
    try:
        return run()
    except Exception:
        log.exception("stage %s failed", stage)
        warnings.append(f"the {stage} stage failed on this file; its result is missing")
        return None
