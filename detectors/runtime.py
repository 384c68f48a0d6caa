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


#: Sessions of this process, shared by every Runtime with the same settings: a model is loaded
#: once per process (the CLIP encoder takes 1.4 s to load here), however many
#: configurations, apps or detector sets are built.
_SESSIONS: dict[tuple[str, int, RuntimeConfig, int, int, int, int], Any] = {}
_SESSIONS_LOCK = threading.Lock()


@dataclass
class Runtime:
    config: RuntimeConfig = field(default_factory=RuntimeConfig)

    def session(self, path: Path) -> Any:
        """The process's session for ``path`` (created on first use; a changed file, by inode,
        size, modification or status-change time, gets a new one)."""
        resolved = path.resolve()
        st = resolved.stat()
        key = (
            str(resolved),
            os.getpid(),
            self.config,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
        )
        with _SESSIONS_LOCK:
            sess = _SESSIONS.get(key)
            if sess is None:
                sess = self._create(path)
                _SESSIONS[key] = sess
            return sess

    def _create(self, path: Path) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.config.intra_op_threads
        opts.inter_op_num_threads = self.config.inter_op_threads
        opts.log_severity_level = 3
        # Worker threads sleep between runs instead of spin-waiting: with several sessions on few
        # cores, one session's spinning threads took the CPU from the next. At 2 MP with a face,
        # benchmarks/bench_detectors.py --face gave face-sbi 149 ms spinning, 89 ms without.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        available = set(ort.get_available_providers())
        providers = [p for p in self.config.providers if p in available] or ["CPUExecutionProvider"]
        log.info("loading %s with %s", path.name, providers)
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
