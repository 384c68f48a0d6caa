"""onnxruntime sessions: one per model file per process, shared by every thread.

``InferenceSession.run`` is thread-safe, so the API's request threads share one session per
model; a forked worker process (Celery prefork) builds its own on first use.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuntimeConfig:
    """Execution settings. ``providers`` are tried in order; unavailable ones are skipped."""

    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    intra_op_threads: int = 0  # 0: onnxruntime's default (one per core)
    inter_op_threads: int = 1


@dataclass
class Runtime:
    config: RuntimeConfig = field(default_factory=RuntimeConfig)
    _sessions: dict[tuple[str, int], Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def session(self, path: Path) -> Any:
        """The process's session for ``path`` (created on first use)."""
        key = (str(path.resolve()), os.getpid())
        with self._lock:
            sess = self._sessions.get(key)
            if sess is None:
                sess = self._create(path)
                self._sessions[key] = sess
            return sess

    def _create(self, path: Path) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.config.intra_op_threads
        opts.inter_op_num_threads = self.config.inter_op_threads
        opts.log_severity_level = 3
        available = set(ort.get_available_providers())
        providers = [p for p in self.config.providers if p in available] or ["CPUExecutionProvider"]
        log.info("loading %s with %s", path.name, providers)
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)

    @staticmethod
    def available_providers() -> list[str]:
        import onnxruntime as ort

        return list(ort.get_available_providers())
