"""Batch throughput (files/s) over a folder of varied files: CLI, API, Celery; and resume.

    .venv/bin/python benchmarks/bench_batch.py [--files 1000]
        [--modes cli,resume,api,api-threads,celery]
        [--kind mixed|photos2mp] [--provenance-only]

The folder is made in a temporary directory. ``--kind mixed`` (the default): copies of the
project's signed samples and the video (so some files are identical), and drawn pictures
re-encoded at several JPEG qualities and sizes or as PNG, so the mix exercises every stage.
``--kind photos2mp``: distinct 1920x1080 JPEGs of drawn photographs and generated-looking
pictures (the issue's 2 MP case). ``--provenance-only`` runs every mode with no pixel
detectors (``detectors = []``, the documented mode for triage of large archives).

- ``cli``: ``service.batch.run`` with 1 and 2 worker processes, each from an empty output.
- ``resume``: ``shingan batch`` as a subprocess, killed (SIGKILL) once a third of the rows are
  written, then run again with ``--resume``; checks that the output has exactly one row per file.
- ``api``: ``POST /v1/batches`` with every file, in-process runner with 1 and 2 worker
  processes (``batch_runner = processes``, the default), timed from the upload until the batch
  is done (worker start-up included); checks results.csv. Each run is in a process of its own
  with the service's malloc settings (``service.memory.tune_malloc()``, as ``shingan serve``),
  and prints the peak memory of the service and of each worker process.
- ``api-threads``: the same with ``batch_runner = threads`` (the items analysed in the service
  process's own threads).
- ``celery``: the same through Redis and 1 and 2 ``shingan worker`` processes (needs
  ``redis-server``); worker start-up is not timed.

Each figure is one run (a 1,000-file run takes minutes); the machine is noisy, so compare the
ratios within one invocation rather than across machines.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from samples.make_samples import draw_generated, draw_scene  # noqa: E402
from service.batch import run  # noqa: E402

#: Settings every mode applies (``--provenance-only`` turns the detectors off).
OVERRIDES: dict[str, Any] = {}


def make_folder(folder: Path, count: int) -> None:
    samples = sorted(
        p for p in (ROOT / "samples").iterdir() if p.suffix in {".jpg", ".png", ".mp4"}
    )
    for i in range(count):
        kind = i % 10
        if kind < len(samples) and i < len(samples) * 10:
            shutil.copy(
                samples[kind % len(samples)],
                folder / f"{i:05d}{samples[kind % len(samples)].suffix}",
            )
            continue
        w, h = (640, 480) if i % 3 else (1024, 768)
        rgb = draw_scene(w, h, seed=i) if i % 2 else draw_generated(w, h, seed=i)
        buf = io.BytesIO()
        if i % 4 == 0:
            Image.fromarray(rgb).save(buf, format="PNG")
            (folder / f"{i:05d}.png").write_bytes(buf.getvalue())
        else:
            Image.fromarray(rgb).save(buf, format="JPEG", quality=60 + (i * 7) % 35)
            (folder / f"{i:05d}.jpg").write_bytes(buf.getvalue())


def make_photos(folder: Path, count: int) -> None:
    """``count`` distinct 1920x1080 JPEGs (2 MP): 24 drawn pictures, each file shifted and
    re-encoded at its own quality so that no two files have the same bytes."""
    bases = [
        draw_scene(1920, 1080, seed=i) if i % 3 else draw_generated(1920, 1080, seed=i)
        for i in range(24)
    ]
    for i in range(count):
        rgb = np.roll(bases[i % len(bases)], shift=(i // len(bases)) * 3, axis=1)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=75 + i % 20)
        (folder / f"{i:05d}.jpg").write_bytes(buf.getvalue())


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def bench_cli(folder: Path, tmp: Path, count: int) -> None:
    for workers in (1, 2):
        out = tmp / f"results-{workers}.csv"
        start = time.monotonic()
        summary = run([folder], out, workers=workers, overrides=dict(OVERRIDES))
        elapsed = time.monotonic() - start
        rows = csv_rows(out)
        assert len(rows) == count == len({r["path"] for r in rows}), "incomplete CSV"
        print(
            f"cli, {workers} worker(s): {count} files ({summary.identical} identical copies, "
            f"{summary.errors} errors) in {elapsed:.1f} s = {count / elapsed:.2f} files/s",
            flush=True,
        )
    start = time.monotonic()
    summary = run([folder], tmp / "results-2.csv", resume=True)
    print(
        f"cli, resume of a finished run: {summary.skipped} skipped in "
        f"{time.monotonic() - start:.1f} s",
        flush=True,
    )


def bench_resume(folder: Path, tmp: Path, count: int) -> None:
    out = tmp / "interrupted.csv"
    cmd = [sys.executable, "-m", "service.cli", "batch", str(folder), "--out", str(out)]
    env = {**os.environ, "SHINGAN_DATA_DIR": str(tmp / "cli-data")}
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL, cwd=ROOT)
    while not out.exists() or out.read_text(encoding="utf-8").count("\n") < count // 3:
        if proc.poll() is not None:
            raise SystemExit("shingan batch ended before it could be interrupted")
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = time.monotonic() - start
    before = len(csv_rows(out))
    start = time.monotonic()
    done = subprocess.run(
        [*cmd, "--resume"], env=env, capture_output=True, text=True, cwd=ROOT, check=False
    )
    second = time.monotonic() - start
    rows = csv_rows(out)
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set(paths)) == count, (len(paths), len(set(paths)), count)
    print(
        f"resume: killed after {first:.1f} s with {before} rows; --resume finished the other "
        f"{count - before} in {second:.1f} s (exit {done.returncode}); {len(rows)} rows, one "
        f"per file. Summary: {done.stderr.strip().splitlines()[-1]}",
        flush=True,
    )


def _post_and_wait(app: Any, folder: Path, count: int, label: str) -> None:
    client = app.test_client()
    files = sorted(folder.iterdir())
    start = time.monotonic()
    data = {"file": [(io.BytesIO(f.read_bytes()), f.name) for f in files]}
    with client.post("/v1/batches", data=data, content_type="multipart/form-data") as res:
        assert res.status_code == 202, res.get_json()
        batch_id = res.get_json()["id"]
    accepted = time.monotonic() - start
    while True:
        with client.get(f"/v1/batches/{batch_id}?limit=0") as res:
            body = res.get_json()
        if body["status"] == "done":
            break
        time.sleep(0.1)  # the CLI's time is exact; polling adds at most this to the API's
    elapsed = time.monotonic() - start
    with client.get(f"/v1/batches/{batch_id}/results.csv") as res:
        rows = list(csv.DictReader(io.StringIO(res.get_data(as_text=True))))
    assert len(rows) == count, len(rows)
    print(
        f"{label}: {count} files accepted in {accepted:.1f} s, done in {elapsed:.1f} s = "
        f"{count / elapsed:.2f} files/s; counts {body['counts']}",
        flush=True,
    )


def _peak_mb(pid: int | None) -> float:
    """A process's peak resident memory (VmHWM), MB; 0 when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (OSError, TypeError):
        return 0.0
    kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")), 0)
    return kb / 1024


def _api_run(
    folder: Path, tmp: Path, count: int, workers: int, runner: str, overrides: dict[str, Any]
) -> None:
    """One API run in a process of its own, with the service's malloc settings (as
    ``shingan serve`` sets them), whatever the CLI runs before set in the parent."""
    from service.memory import tune_malloc
    from service.web import create_app

    tune_malloc()
    settings: dict[str, Any] = {
        "data_dir": str(tmp / f"api-{runner}-{workers}"),
        "batch_workers": workers,
        "batch_runner": runner,
        **overrides,
    }
    if workers > 1:
        settings["onnx_threads"] = 1
    app = create_app(settings)
    jobs = app.extensions["shingan"].runner
    try:
        what = "thread(s)" if runner == "threads" else "worker process(es)"
        _post_and_wait(app, folder, count, f"api, in-process runner, {workers} {what}")
        peaks = [f"{_peak_mb(p.pid):.0f}" for p in jobs.processes]
        print(
            f"    peak memory: service {_peak_mb(os.getpid()):.0f} MB"
            + (f", worker processes {' and '.join(peaks)} MB" if peaks else ""),
            flush=True,
        )
    finally:
        jobs.stop()


def bench_api(folder: Path, tmp: Path, count: int, runner: str = "processes") -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    for workers in (1, 2):
        proc = ctx.Process(
            target=_api_run, args=(folder, tmp, count, workers, runner, dict(OVERRIDES))
        )
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit(f"the API run ended with {proc.exitcode}")


def bench_api_threads(folder: Path, tmp: Path, count: int) -> None:
    bench_api(folder, tmp, count, runner="threads")


def bench_celery(folder: Path, tmp: Path, count: int) -> None:
    import redis

    from service.web import create_app

    binary = shutil.which("redis-server")
    if binary is None:
        print("celery: skipped (redis-server is not installed)")
        return
    port = 6399
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(100):
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.RedisError:
                time.sleep(0.1)
        for workers in (1, 2):
            data = tmp / f"celery-{workers}"
            env = {
                **os.environ,
                "SHINGAN_DATA_DIR": str(data),
                "SHINGAN_BROKER_URL": url,
                "SHINGAN_ONNX_THREADS": "1" if workers > 1 else "2",
                **({"SHINGAN_DETECTORS": ""} if "detectors" in OVERRIDES else {}),
            }
            logs = [tmp / f"worker-{workers}-{n}.log" for n in range(workers)]
            procs = []
            for n, log in enumerate(logs):
                with log.open("wb") as fh:
                    procs.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "service.cli", "worker", "--name", f"w{n}@b"],
                            env=env,
                            stdout=fh,
                            stderr=subprocess.STDOUT,
                            cwd=ROOT,
                        )
                    )
            try:
                while not all("ready" in log.read_text(errors="replace") for log in logs):
                    time.sleep(0.2)
                app = create_app({"data_dir": str(data), "broker_url": url})
                _post_and_wait(app, folder, count, f"api, celery, {workers} worker process(es)")
            finally:
                for p in procs:
                    p.terminate()
                    p.wait(timeout=60)
    finally:
        server.terminate()
        server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description="Batch throughput")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--modes", default="cli,resume,api,api-threads,celery")
    parser.add_argument(
        "--kind", choices=("mixed", "photos2mp"), default="mixed", help="what the folder holds"
    )
    parser.add_argument(
        "--provenance-only", action="store_true", help="no pixel detectors (detectors = [])"
    )
    args = parser.parse_args()
    modes = args.modes.split(",")
    if args.provenance_only:
        OVERRIDES["detectors"] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "incoming"
        folder.mkdir()
        (make_photos if args.kind == "photos2mp" else make_folder)(folder, args.files)
        print(f"{args.files} files, {sum(f.stat().st_size for f in folder.iterdir()) / 1e6:.0f} MB")
        steps = {
            "cli": bench_cli,
            "resume": bench_resume,
            "api": bench_api,
            "api-threads": bench_api_threads,
            "celery": bench_celery,
        }
        for mode in modes:
            steps[mode](folder, Path(tmp), args.files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
