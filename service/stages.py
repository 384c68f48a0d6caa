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
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

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


def run_with_deadline(name: str, timeout_s: float, run: Callable[[], T]) -> T:
    """``run()`` in a helper thread, waiting at most ``timeout_s`` for it.

    Python cannot stop a thread that is inside a decoder or a model, so a stage that overruns
    is abandoned: the caller goes on without its result and the thread ends when the work does.

    Raises:
        StageTimeout: the deadline passed first.
        Exception: whatever ``run`` raised.
    """
    global _abandoned
    if timeout_s <= 0:
        return run()
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        global _abandoned
        try:
            box["value"] = run()
        except BaseException as exc:  # handed to the caller, or dropped if it left
            box["error"] = exc
        finally:
            with _abandoned_lock:
                done.set()
                if box.get("abandoned"):
                    _abandoned -= 1
                    log.warning("stage %s finished after its deadline", name)

    threading.Thread(target=target, name=f"shingan-stage-{name}", daemon=True).start()
    if not done.wait(timeout_s):
        with _abandoned_lock:
            if not done.is_set():
                box["abandoned"] = True
                _abandoned += 1
                raise StageTimeout(name)
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


class Helper:
    """``run()`` in a daemon thread that its caller may give up on: :meth:`abandon` counts it
    among :func:`abandoned_stages` until it ends, as :func:`run_with_deadline` does for a stage
    that overruns. ``run`` must not raise (it reports its own failures)."""

    def __init__(self, name: str, run: Callable[[], None]) -> None:
        self._done = False
        self._abandoned = False
        self._thread = threading.Thread(
            target=self._target, args=(run,), name=f"shingan-stage-{name}", daemon=True
        )
        self._name = name
        self._thread.start()

    def _target(self, run: Callable[[], None]) -> None:
        global _abandoned
        try:
            run()
        finally:
            with _abandoned_lock:
                self._done = True
                if self._abandoned:
                    _abandoned -= 1
                    log.warning("stage %s finished after its deadline", self._name)

    def abandon(self) -> None:
        """Go on without waiting: a thread still running is counted until it ends."""
        global _abandoned
        with _abandoned_lock:
            if not self._done and not self._abandoned:
                self._abandoned = True
                _abandoned += 1

    def join(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds; whether the thread has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()


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
