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
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

from provenance.errors import ShinganError
from provenance.media import MediaError, sha256_file, sniff

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


class BatchError(ShinganError):
    """A usage problem (output exists, unknown format): exit code 2."""

    code = "batch_usage"


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


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def csv_cell(value: Any) -> Any:
    """A value as it may stand in a CSV cell that people open in spreadsheets.

    Control characters (newlines, escapes, NUL) in text from files or file names become U+FFFD,
    and text that a spreadsheet would run as a formula (``= + - @``) gets a leading apostrophe.
    Numbers and booleans are left alone.
    """
    if not isinstance(value, str):
        return value
    text = _CONTROL.sub("\N{REPLACEMENT CHARACTER}", value)
    if text[:1] in ("=", "+", "-", "@"):
        return "'" + text
    return text


def csv_row(row: dict[str, Any]) -> list[Any]:
    """A result row in :data:`CSV_FIELDS` order, every cell made safe by :func:`csv_cell`."""
    return [csv_cell(row.get(f, "")) for f in CSV_FIELDS]


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


# Failures that another attempt cannot change: resuming does not retry these files.
PERMANENT_ERRORS = frozenset(
    {"unsupported_media_type", "corrupt_media", "too_large", "too_many_pixels", "empty_media"}
)


class Sink:
    """Appends results to CSV or JSON Lines, flushed and synced per result.

    On resume it remembers, by sha256, every result already written (successes, and failures
    no retry can change), and the paths they were written for: a file already done is skipped,
    and a file whose identical twin is done gets the twin's result under its own path, so the
    output ends with one row per file.
    """

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
        # sha256 -> the record written for it (a CSV row or a JSON object)
        self.done: dict[str, dict[str, Any]] = {}
        self.paths: set[str] = set()
        if exists:
            self._read_done()
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

    def _read_done(self) -> None:
        """Results already written; failures that might pass another time are left to retry."""
        text = self.out.read_text(encoding="utf-8", errors="replace")
        if self.kind == "csv":
            for row in csv.DictReader(io.StringIO(text)):
                code = row.get("error_code") or ""
                if row.get("sha256") and (not code or code in PERMANENT_ERRORS):
                    self.done[row["sha256"]] = row
                    self.paths.add(row.get("path") or "")
        else:
            for line in text.splitlines():
                try:
                    item = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash
                if not isinstance(item, dict):
                    continue
                sha = item.get("sha256") or (item.get("media") or {}).get("sha256")
                code = (item.get("error") or {}).get("code") if "error" in item else ""
                if sha and (not code or code in PERMANENT_ERRORS):
                    self.done[sha] = item
                    self.paths.add(str(item.get("path") or ""))

    def failed_before(self, sha256: str) -> bool:
        record = self.done.get(sha256) or {}
        return bool(record.get("error_code") or record.get("error"))

    def has_path(self, path: Path) -> bool:
        """Whether a result was written for this path (as the output spells it)."""
        return (csv_cell(str(path)) if self.kind == "csv" else str(path)) in self.paths

    def write_copy(self, path: Path, sha256: str) -> None:
        """Write the result already recorded for this content under another path."""
        record = dict(self.done[sha256])
        record["path"] = str(path)
        if self.kind == "csv":
            csv.writer(self._fh).writerow(csv_row(record))  # cells read back are safe already
            self.paths.add(csv_cell(str(path)))
        else:
            self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.paths.add(str(path))
        self._sync()

    def write(self, path: Path, report: dict[str, Any] | None, failure: Failure | None) -> None:
        if self.kind == "csv":
            if report is not None:
                row = row_of(path, report)
            else:
                row = error_row(path, failure or Failure("", "unknown", "no result"))
            csv.writer(self._fh).writerow(csv_row(row))
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
    from service.memory import tune_malloc

    tune_malloc(worker=True)  # one file at a time: keep freed memory for the next
    if share:
        import cv2

        from provenance.pdq import use_helper_thread

        cv2.setNumThreads(1)
        use_helper_thread(False)
        overrides = {"onnx_threads": 1, **overrides}

    from service.banks_sqlite import database_banks

    config = load_config(config_file, overrides=overrides)
    # The banks kept in the database count as they do for the service (the CLI is the
    # operator: every bank); without a database, the CSV banks alone. A current SQLite file is
    # read without the database layer (service.banks_sqlite).
    _OPTIONS = config.analyze_options(
        bank_source=database_banks(config), **{"find_sidecars": True, **extra}
    )


def _ready() -> None:
    """A first task for each worker, so that it starts before the files are known."""


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


def looks_like_media(path: Path) -> bool:
    """Whether the file's first bytes are of a supported type. Empty or unreadable files count
    as media: analysing them reports the problem."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        return True
    return not head or sniff(head) is not None


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
    identical: int = 0  # files given the result of an identical file (in analysed/errors)
    failed_before: int = 0  # skipped files whose earlier result is a permanent failure
    not_media: int = 0  # files of no supported type, left out (not with ``strict``)

    @property
    def rate(self) -> float:
        """Files given a result per second (identical copies included)."""
        return (self.analysed + self.errors) / self.seconds if self.seconds > 0 else 0.0


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
    strict: bool = False,
) -> Summary:
    """Analyse every file under ``paths`` into ``out`` (.csv or .jsonl).

    Files whose bytes are of no supported image, video or audio type (keys, scripts, JSON, notes
    beside the media) are left out and counted in ``Summary.not_media``; with ``strict`` they
    are analysed like the rest, which records each as an ``unsupported_media_type`` error.

    Raises:
        BatchError: the output exists without ``resume``, has an unknown type, or a path is missing.
        service.config.ConfigError: the configuration is unusable.
    """
    files = list(walk(paths))
    sink = Sink(out, resume)
    summary = Summary(total=len(files))
    start = time.monotonic()
    args = (config_file, overrides or {}, extra or {})
    pool: ProcessPoolExecutor | None = None
    try:
        todo: list[Path] = []
        first: dict[str, Path] = {}  # sha256 -> the file that will be analysed for it
        twins: dict[str, list[Path]] = {}  # sha256 -> other files with the same bytes
        for f in files:
            if f.suffix.lower() == ".c2pa" or (not strict and not looks_like_media(f)):
                # A sidecar manifest is read with its asset (find_sidecars), never on its own.
                summary.not_media += 1
                continue
            sha = _sha_or_blank(f)
            if sha and sha in sink.done:
                if not sink.has_path(f):
                    sink.write_copy(f, sha)  # e.g. a copy added to the folder since the last run
                summary.skipped += 1
                if sink.failed_before(sha):
                    summary.failed_before += 1
            elif sha and sha in first:
                twins.setdefault(sha, []).append(f)
            else:
                if sha:
                    first[sha] = f
                todo.append(f)
                if pool is None and workers > 1:
                    # spawn, not fork: the parent may already run onnxruntime and c2pa threads,
                    # and a forked copy of those crashes. Started at the first file to analyse,
                    # the workers load (interpreter, imports, configuration) while this process
                    # reads and hashes the rest.
                    pool = ProcessPoolExecutor(
                        max_workers=workers,
                        mp_context=multiprocessing.get_context("spawn"),
                        initializer=_init_worker,
                        initargs=(*args, True),
                    )
                    for _ in range(workers):
                        pool.submit(_ready)

        to_write = len(todo) + sum(map(len, twins.values()))

        def record(path: str, report: dict[str, Any] | None, failure: Failure | None) -> None:
            sha = report["media"]["sha256"] if report else (failure.sha256 if failure else "")
            for p in [Path(path), *twins.pop(sha, [])]:  # identical files: analysed once
                sink.write(p, report, failure)
                if report:
                    summary.analysed += 1
                    summary.labels[report["verdict"]["label"]] += 1
                else:
                    summary.errors += 1
                summary.identical += p != Path(path)
            summary.seconds = time.monotonic() - start
            if progress:
                progress(summary, to_write)

        if pool is None:
            if todo:
                _init_worker(*args)
            for f in todo:
                record(*_analyse(str(f)))
        else:
            pending: list[Future[tuple[str, dict[str, Any] | None, Failure | None]]] = []
            for f in todo:  # a bounded window in flight; results written in file order
                pending.append(pool.submit(_analyse, str(f)))
                if len(pending) >= workers * 2:
                    record(*pending.pop(0).result())
            for fut in pending:
                record(*fut.result())
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
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
