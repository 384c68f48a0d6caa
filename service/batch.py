"""Batch checks over folders: results written as they come, resumable, with progress.

Every result is appended and flushed to disk before the next file starts, so a crash or a
power cut loses nothing already done; ``resume`` skips files whose sha256 is already in the
output. Worker processes each load the configuration once (trust files, ONNX sessions).
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

from provenance.media import MediaError, sha256_file

CSV_FIELDS = (
    "path",
    "sha256",
    "bytes",
    "mime",
    "label",
    "confidence",
    "basis",
    "c2pa_state",
    "c2pa_ai_declared",
    "metadata_generator",
    "watermark",
    "detector_score",
    "summary",
    "abstentions",
    "error_code",
    "error",
    "report_id",
    "analyzed_at",
    "shingan",
    "models",
)


class BatchError(Exception):
    """A usage problem (output exists, unknown format): exit code 2."""


class Failure(NamedTuple):
    sha256: str
    code: str
    message: str


def walk(paths: Iterable[Path]) -> Iterator[Path]:
    """Files under ``paths`` in a stable order; hidden entries and directory links skipped."""
    for root in paths:
        if root.is_file():
            yield root
            continue
        if not root.is_dir():
            raise BatchError(f"{root}: no such file or directory")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if not name.startswith("."):
                    yield Path(dirpath) / name


def row_of(path: Path, report: dict[str, Any]) -> dict[str, Any]:
    v = report["verdict"]
    marks = [w["scheme"] for w in report["provenance"]["watermarks"] if w["detected"]]
    return {
        "path": str(path),
        "sha256": report["media"]["sha256"],
        "bytes": report["media"]["bytes"],
        "mime": report["media"]["mime"],
        "label": v["label"],
        "confidence": v["confidence"],
        "basis": "+".join(v["basis"]),
        "c2pa_state": report["provenance"]["c2pa"]["state"],
        "c2pa_ai_declared": report["provenance"]["c2pa"]["ai_declared"],
        "metadata_generator": report["provenance"]["metadata"]["generator"] or "",
        "watermark": "+".join(marks),
        "detector_score": "" if v["score"] is None else v["score"],
        "summary": v["summary"],
        "abstentions": "+".join(a["code"] for a in report.get("abstentions", [])),
        "error_code": "",
        "error": "",
        "report_id": report["id"],
        "analyzed_at": report["created_at"],
        "shingan": report["versions"]["shingan"],
        "models": " ".join(f"{k}:{s[:12]}" for k, s in report["versions"]["models"].items()),
    }


def error_row(path: Path, failure: Failure) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(CSV_FIELDS, "")
    row.update(
        {
            "path": str(path),
            "sha256": failure.sha256,
            "error_code": failure.code,
            "error": failure.message,
        }
    )
    return row


class Sink:
    """Appends results to CSV or JSON Lines, flushed and synced per result."""

    def __init__(self, out: Path, resume: bool) -> None:
        self.out = out
        self.kind = {".csv": "csv", ".jsonl": "jsonl"}.get(out.suffix.lower())
        if self.kind is None:
            raise BatchError(f"{out}: the output must end in .csv or .jsonl")
        exists = out.exists() and out.stat().st_size > 0
        if exists and not resume:
            raise BatchError(f"{out} exists; add --resume to continue it, or choose another --out")
        if exists:
            self._drop_torn_tail()
        self.done: set[str] = self._read_done() if exists else set()
        out.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = out.open("a", encoding="utf-8", newline="")
        if self.kind == "csv" and not exists:
            csv.writer(self._fh).writerow(CSV_FIELDS)
            self._sync()

    def _drop_torn_tail(self) -> None:
        """Cut a record that a crash left half-written, so the next one starts on a fresh line."""
        data = self.out.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with self.out.open("r+b") as fh:
                fh.truncate(keep)

    def _read_done(self) -> set[str]:
        """sha256 of files already analysed (errors are retried)."""
        done = set()
        text = self.out.read_text(encoding="utf-8", errors="replace")
        if self.kind == "csv":
            for row in csv.DictReader(io.StringIO(text)):
                if row.get("sha256") and not row.get("error_code"):
                    done.add(row["sha256"])
        else:
            for line in text.splitlines():
                try:
                    item = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash
                sha = (item.get("media") or {}).get("sha256")
                if sha and "error" not in item:
                    done.add(sha)
        return done

    def write(self, path: Path, report: dict[str, Any] | None, failure: Failure | None) -> None:
        if self.kind == "csv":
            if report is not None:
                row = row_of(path, report)
            else:
                row = error_row(path, failure or Failure("", "unknown", "no result"))
            csv.writer(self._fh).writerow([row[f] for f in CSV_FIELDS])
        else:
            if report is not None:
                item: dict[str, Any] = {"path": str(path), **report}
            else:
                f = failure or Failure("", "unknown", "no result")
                item = {
                    "path": str(path),
                    "sha256": f.sha256,
                    "error": {"code": f.code, "message": f.message},
                }
            self._fh.write(json.dumps(item, ensure_ascii=False) + "\n")
        self._sync()

    def _sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


# --- workers ----------------------------------------------------------------------------------

_OPTIONS: Any = None


def _init_worker(
    config_file: str | None, overrides: dict[str, Any], extra: dict[str, Any], share: bool = False
) -> None:
    """Load the configuration once per worker. With several workers each takes one core's worth
    of threads (onnxruntime, OpenCV) so they do not fight over the same cores."""
    global _OPTIONS
    from service.config import load_config

    if share:
        import cv2

        cv2.setNumThreads(1)
        overrides = {"onnx_threads": 1, **overrides}

    _OPTIONS = load_config(config_file, overrides=overrides).analyze_options(**extra)


def _analyse(path: str) -> tuple[str, dict[str, Any] | None, Failure | None]:
    from service.pipeline import analyze

    p = Path(path)
    try:
        report = analyze(p, _OPTIONS, filename=p.name).to_dict()
        return path, report, None
    except MediaError as exc:
        return path, None, Failure(_sha_or_blank(p), exc.code, exc.message)
    except OSError as exc:
        return path, None, Failure(_sha_or_blank(p), "unreadable", exc.strerror or str(exc))
    except Exception as exc:  # a bug must not stop a thousand-file run
        return (
            path,
            None,
            Failure(_sha_or_blank(p), "internal_error", f"{type(exc).__name__}: {exc}"),
        )


def _sha_or_blank(path: Path) -> str:
    try:
        return sha256_file(path)[0]
    except OSError:
        return ""


@dataclass
class Summary:
    total: int = 0
    skipped: int = 0
    analysed: int = 0
    errors: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.analysed / self.seconds if self.seconds > 0 else 0.0


def run(
    paths: list[Path],
    out: Path,
    *,
    workers: int = 1,
    resume: bool = False,
    config_file: str | None = None,
    overrides: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    progress: Callable[[Summary, int], None] | None = None,
) -> Summary:
    """Analyse every file under ``paths`` into ``out`` (.csv or .jsonl).

    Raises:
        BatchError: the output exists without ``resume``, has an unknown type, or a path is missing.
        service.config.ConfigError: the configuration is unusable.
    """
    files = list(walk(paths))
    sink = Sink(out, resume)
    summary = Summary(total=len(files))
    start = time.monotonic()
    todo = []
    for f in files:
        if sink.done and _sha_or_blank(f) in sink.done:
            summary.skipped += 1
        else:
            todo.append(f)

    def record(path: str, report: dict[str, Any] | None, failure: Failure | None) -> None:
        sink.write(Path(path), report, failure)
        if report:
            summary.analysed += 1
            summary.labels[report["verdict"]["label"]] += 1
        else:
            summary.errors += 1
        summary.seconds = time.monotonic() - start
        if progress:
            progress(summary, len(todo))

    args = (config_file, overrides or {}, extra or {})
    try:
        if workers <= 1:
            _init_worker(*args)
            for f in todo:
                record(*_analyse(str(f)))
        else:
            # spawn, not fork: the parent may already run onnxruntime and c2pa threads, and a
            # forked copy of those crashes.
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(
                max_workers=workers,
                mp_context=ctx,
                initializer=_init_worker,
                initargs=(*args, True),
            ) as pool:
                pending: list[Future[tuple[str, dict[str, Any] | None, Failure | None]]] = []
                queue = iter(todo)
                for f in queue:  # a bounded window in flight; results written in file order
                    pending.append(pool.submit(_analyse, str(f)))
                    if len(pending) >= workers * 2:
                        record(*pending.pop(0).result())
                for fut in pending:
                    record(*fut.result())
    finally:
        sink.close()
        summary.seconds = time.monotonic() - start
    return summary


def progress_printer(stream: IO[str] = sys.stderr) -> Callable[[Summary, int], None]:
    """A progress line with rate and ETA: rewritten in place on a terminal, every 5% otherwise."""
    tty = stream.isatty()
    last = {"shown": -1.0}

    def show(s: Summary, todo: int) -> None:
        done = s.analysed + s.errors
        share = done / todo if todo else 1.0
        if not tty and share < 1.0 and share - last["shown"] < 0.05:
            return
        last["shown"] = share
        eta = (todo - done) / s.rate if s.rate > 0 else 0.0
        minutes, seconds = divmod(int(eta), 60)
        line = (
            f"[{done}/{todo}] {share:5.1%} {s.rate:.2f} files/s "
            f"ETA {minutes:02d}:{seconds:02d} errors {s.errors}"
        )
        stream.write(("\r" + line) if tty else line + "\n")
        if tty and done == todo:
            stream.write("\n")
        stream.flush()

    return show
