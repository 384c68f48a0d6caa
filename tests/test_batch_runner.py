"""The in-process batch runner's worker processes (``batch_runner = processes``, the default):
the caller's banks and entries added since they started, errors, a process killed mid-item,
stop, idle, resume, stage deadlines, and the ``threads`` runner kept as it was."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from service.analysis_workers import Outcome, analyse_item
from service.config import load_config
from service.jobs import InProcessRunner, WorkerContext, context_from_config
from service.media_store import MediaStore
from service.options import AnalyzeOptions
from service.pipeline import analyze
from service.store import NewItem, Store
from tests.conftest import CA, sample
from tests.test_batch_api import make_app, post_files, wait_done

#: Where the analyses below leave their marks (set before a runner starts its processes,
#: which inherit the environment).
MARKS = "SHINGAN_TEST_RUNNER_MARKS"


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def gone(pid: int | None) -> bool:
    """Ended: a zombie whose every thread has exited (what its parent can reap) counts."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return state == "Z" and len(os.listdir(f"/proc/{pid}/task")) <= 1
    except FileNotFoundError:
        return True


def wait_until(check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def recompressed() -> bytes:
    """unsigned.jpg smaller and re-encoded: other bytes, a near PDQ hash."""
    buf = io.BytesIO()
    Image.open(sample("unsigned.jpg")).resize((480, 320)).save(buf, "JPEG", quality=70)
    return buf.getvalue()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def post(client: FlaskClient, files: list[tuple[str, bytes]], key: str, lang: str = "en") -> Any:
    data: dict[str, Any] = {"file": [(io.BytesIO(b), n) for n, b in files]}
    with client.post(
        f"/v1/batches?lang={lang}",
        data=data,
        content_type="multipart/form-data",
        headers=bearer(key),
    ) as res:
        assert res.status_code == 202, res.get_json()
        batch_id: str = res.get_json()["id"]
    deadline = time.monotonic() + 120
    while True:
        with client.get(f"/v1/batches/{batch_id}", headers=bearer(key)) as res:
            body: dict[str, Any] = res.get_json()
        if body["status"] == "done":
            return body
        assert time.monotonic() < deadline, body["counts"]
        time.sleep(0.1)


def report_of(client: FlaskClient, item: dict[str, Any], key: str) -> dict[str, Any]:
    with client.get(f"/v1/reports/{item['report_id']}", headers=bearer(key)) as res:
        assert res.status_code == 200
        body: dict[str, Any] = res.get_json()
        return body


@pytest.fixture
def keyed_one(tmp_path: Path) -> Iterator[Flask]:
    """API keys required, one worker process (so both batches below meet the same one)."""
    app = make_app(tmp_path, api_keys="required", batch_workers=1)
    yield app
    app.extensions["shingan"].runner.stop()


def test_the_processes_use_the_callers_banks_and_entries_added_after_they_started(
    keyed_one: Flask,
) -> None:
    client = keyed_one.test_client()
    st = keyed_one.extensions["shingan"]
    runner: InProcessRunner = st.runner
    assert len(runner.processes) == 1  # the default runner: processes, as many as the setting
    desk, other = st.store.keys.create_key("desk"), st.store.keys.create_key("other")
    copy = recompressed()

    first = post(client, [("copy.jpg", copy)], desk)
    assert first["items"][0]["label"] == "inconclusive"
    pid = runner.processes[0].pid
    assert alive(pid)  # analysed in a worker process, still running
    assert pid != os.getpid()

    # desk's own bank (not shared: keys are in use), filled after the process loaded its banks
    with client.post(
        "/v1/banks", json={"name": "debunked", "label": "manipulated"}, headers=bearer(desk)
    ) as res:
        assert res.status_code == 201
    with client.post(
        "/v1/banks/debunked/entries",
        data={"file": [(io.BytesIO(sample("unsigned.jpg").read_bytes()), "viral.jpg")]},
        content_type="multipart/form-data",
        headers=bearer(desk),
    ) as res:
        assert res.get_json()["added"] == 1

    mine = post(client, [("copy.jpg", copy)], desk, lang="ja")
    item = mine["items"][0]
    assert item["label"] == "manipulated", item
    report = report_of(client, item, desk)
    assert report["matches"][0]["entry"] == "viral.jpg"
    assert report["language"] == "ja"  # the batch's language reached the process

    theirs = post(client, [("copy.jpg", copy)], other)
    assert theirs["items"][0]["label"] == "inconclusive"  # desk's bank is not theirs
    assert report_of(client, theirs["items"][0], other)["matches"] == []

    assert runner.processes[0].pid == pid  # one process saw the entry appear
    assert runner.processes[0].started == 1


def test_errors_are_the_items_and_the_batch_goes_on(tmp_path: Path) -> None:
    app = make_app(tmp_path, batch_workers=2)
    client = app.test_client()
    try:
        status, body, _ = post_files(
            client,
            [
                ("corrupt.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 10 + b"garbage" * 50),
                ("good.jpg", sample("camera_capture.jpg").read_bytes()),
            ],
        )
        assert status == 202, body
        done = wait_done(client, body["id"])
        by_name = {i["filename"]: i for i in done["items"]}
        assert by_name["corrupt.jpg"]["status"] == "error"
        assert by_name["corrupt.jpg"]["error"]["code"] == "corrupt_media"
        assert by_name["good.jpg"]["label"] == "authentic"
    finally:
        app.extensions["shingan"].runner.stop()


# --- analyses run in the worker processes (module functions: a spawned process imports them)


def dying_analysis(
    options: AnalyzeOptions, path: Path, filename: str, language: str, actor: str
) -> Outcome:
    """``die-once*`` kills its process the first time, ``die-always*`` every time."""
    marks = Path(os.environ[MARKS])
    if filename.startswith("die-always") or (
        filename.startswith("die-once") and not (marks / filename).exists()
    ):
        (marks / filename).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return analyse_item(options, path, filename, language, actor)


def failing_analysis(
    options: AnalyzeOptions, path: Path, filename: str, language: str, actor: str
) -> Outcome:
    """A bug in the analysis of ``bug*``; ``slow*`` files take until a mark file appears."""
    if filename.startswith("bug"):
        import service.analysis_workers as workers

        def broken(*args: Any, **kw: Any) -> Any:
            raise AttributeError("a bug")

        workers.analyze = broken  # type: ignore[attr-defined]  # in this process only
        try:
            return analyse_item(options, path, filename, language, actor)
        finally:
            workers.analyze = analyze  # type: ignore[attr-defined]
    if filename.startswith("slow"):
        marks = Path(os.environ[MARKS])
        (marks / "slow-started").touch()
        while not (marks / "slow-go").exists():
            time.sleep(0.05)
    return analyse_item(options, path, filename, language, actor)


def stalling_analysis(
    options: AnalyzeOptions, path: Path, filename: str, language: str, actor: str
) -> Outcome:
    """The watermark stage of ``stall*`` files never ends (in this process only)."""
    import provenance.watermarks as watermarks

    if filename.startswith("stall"):
        watermarks.detect = lambda *a, **k: threading.Event().wait(60)  # type: ignore[assignment]
    return analyse_item(options, path, filename, language, actor)


def direct_runner(
    tmp_path: Path, analysis: Any, workers: int = 1, **settings: Any
) -> tuple[InProcessRunner, Store, MediaStore]:
    """A runner of processes over a fresh data folder, with ``analysis`` in the processes."""
    config = load_config(
        env={},
        overrides={
            "data_dir": str(tmp_path / "data"),
            "trust_anchors": [str(CA / "root.pem")],
            "detectors": [],
            **settings,
        },
    )
    ctx: WorkerContext = context_from_config(config)
    runner = InProcessRunner(ctx, workers, config=config, analysis=analysis)
    return runner, ctx.store, ctx.media


def queue_batch(
    store: Store, media: MediaStore, batch_id: str, files: list[tuple[str, bytes]]
) -> list[int]:
    items = []
    for name, data in files:
        sha, size = media.put_stream(io.BytesIO(data), 10**9)
        items.append(NewItem(name, sha, size))
    return store.batches.create_batch(batch_id, items, actor="test")


def items_of(store: Store, batch_id: str) -> dict[str, Any]:
    return {i.filename: i for i in store.batches.batch_items(batch_id)}


def batch_done(store: Store, batch_id: str) -> bool:
    batch = store.batches.get_batch(batch_id)
    return batch is not None and batch.status == "done"


def test_a_killed_process_is_replaced_and_its_item_tried_once_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MARKS, str(tmp_path))
    runner, store, media = direct_runner(tmp_path, dying_analysis)
    ids = queue_batch(
        store,
        media,
        "k" * 32,
        [
            ("die-once.jpg", sample("unsigned.jpg").read_bytes()),
            ("die-always.jpg", sample("camera_capture.jpg").read_bytes()),
            ("after.png", sample("ai_generated.png").read_bytes()),
        ],
    )
    runner.start()
    try:
        runner.submit(ids)
        wait_until(lambda: batch_done(store, "k" * 32), timeout=120)
        items = items_of(store, "k" * 32)
        assert items["die-once.jpg"].status == "done"
        assert items["die-once.jpg"].attempts == 2  # the try in the process that died counts
        assert items["die-always.jpg"].status == "error"
        assert items["die-always.jpg"].error.code == "internal_error"
        assert "signal 9" in items["die-always.jpg"].error.message
        assert items["die-always.jpg"].attempts == 2
        assert items["after.png"].label == "ai_generated"
        worker = runner.processes[0]
        assert worker.started == 4  # the first, and one after each death

        # killed while idle, from outside: the next item starts another, with no try lost
        pid = worker.pid
        assert alive(pid)
        os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]
        wait_until(lambda: gone(pid))
        more = queue_batch(
            store, media, "m" * 32, [("later.jpg", sample("tampered.jpg").read_bytes())]
        )
        runner.submit(more)
        wait_until(lambda: batch_done(store, "m" * 32), timeout=60)
        later = items_of(store, "m" * 32)["later.jpg"]
        assert later.label == "manipulated"
        assert later.attempts == 1
        assert worker.started == 5
        assert worker.pid != pid
    finally:
        runner.stop()
    assert worker.pid is None
    assert not alive(pid)
    store.close()


def test_a_bug_is_an_internal_error_and_stop_leaves_a_busy_item_for_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MARKS, str(tmp_path))
    runner, store, media = direct_runner(tmp_path, failing_analysis)
    ids = queue_batch(
        store,
        media,
        "s" * 32,
        [
            ("bug.jpg", sample("unsigned.jpg").read_bytes()),
            ("slow.jpg", sample("camera_capture.jpg").read_bytes()),
            ("queued.png", sample("ai_generated.png").read_bytes()),
        ],
    )
    runner.start()
    runner.submit(ids)
    wait_until(lambda: (tmp_path / "slow-started").exists(), timeout=60)
    pid = runner.processes[0].pid
    started = time.monotonic()
    runner.stop(grace_s=0.5)
    assert time.monotonic() - started < 15  # a busy process does not hold the service up
    assert not alive(pid)
    items = items_of(store, "s" * 32)
    assert items["bug.jpg"].status == "error"
    assert items["bug.jpg"].error.code == "internal_error"
    assert "AttributeError" in items["bug.jpg"].error.message
    assert items["slow.jpg"].status == "running"  # as if the service had died: left to resume
    assert items["queued.png"].status in ("queued", "running")  # not analysed after stop()

    (tmp_path / "slow-go").touch()
    again, store2, _ = direct_runner(tmp_path, failing_analysis)
    again.start()  # resumes the unfinished items
    try:
        wait_until(lambda: batch_done(store2, "s" * 32), timeout=120)
        items = items_of(store2, "s" * 32)
        assert items["slow.jpg"].label == "authentic"
        assert items["slow.jpg"].attempts == 2
        assert items["queued.png"].label == "ai_generated"
        assert items["bug.jpg"].attempts == 1  # finished items are not run again
    finally:
        again.stop()
    store.close()
    store2.close()


def test_a_stalled_stage_keeps_its_deadline_in_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, store, media = direct_runner(tmp_path, stalling_analysis, stage_timeout_s=0.5)
    ids = queue_batch(
        store, media, "t" * 32, [("stall.png", sample("sdxl_watermarked.png").read_bytes())]
    )
    runner.start()
    try:
        started = time.monotonic()
        runner.submit(ids)
        wait_until(lambda: batch_done(store, "t" * 32), timeout=60)
        assert time.monotonic() - started < 40
        item = items_of(store, "t" * 32)["stall.png"]
        report = store.reports.get_report(item.report_id)
    finally:
        runner.stop()
    assert report is not None
    timed = [a for a in report["abstentions"] if a["code"] == "timed_out"]
    assert len(timed) == 1
    assert "watermarks stage took longer than 0.5 s" in timed[0]["message"]
    store.close()


def test_an_idle_process_ends_and_the_next_item_starts_one(tmp_path: Path) -> None:
    runner, store, media = direct_runner(tmp_path, analyse_item)
    runner.idle_s = 0.3
    runner.start()
    try:
        runner.submit(
            queue_batch(store, media, "i" * 32, [("a.jpg", sample("unsigned.jpg").read_bytes())])
        )
        wait_until(lambda: batch_done(store, "i" * 32))
        worker = runner.processes[0]
        wait_until(lambda: worker.pid is None, timeout=15)  # ended when idle
        runner.submit(
            queue_batch(
                store, media, "j" * 32, [("b.png", sample("ai_generated.png").read_bytes())]
            )
        )
        wait_until(lambda: batch_done(store, "j" * 32))
        assert items_of(store, "j" * 32)["b.png"].label == "ai_generated"
        assert worker.started == 2
    finally:
        runner.stop()
    store.close()


def test_warm_starts_the_processes_before_the_items_and_idle_ends_them(tmp_path: Path) -> None:
    """A batch's upload warms the processes (they load while its files are stored); the first
    item uses the warm process; one that gets no item ends when idle."""
    runner, store, media = direct_runner(tmp_path, analyse_item, workers=2)
    runner.idle_s = 0.5
    runner.start()
    try:
        assert all(w.pid is None for w in runner.processes)
        runner.warm()
        pids = [w.pid for w in runner.processes]
        assert all(alive(pid) for pid in pids)
        runner.warm()  # running ones are left as they are
        assert [w.pid for w in runner.processes] == pids
        runner.submit(
            queue_batch(store, media, "w" * 32, [("a.jpg", sample("unsigned.jpg").read_bytes())])
        )
        wait_until(lambda: batch_done(store, "w" * 32))
        assert sum(w.started for w in runner.processes) == 2  # no process started twice
        for pid in pids:
            wait_until(lambda pid=pid: gone(pid), timeout=15)
    finally:
        runner.stop()
    store.close()


def test_the_threads_runner_analyses_in_the_service_process(tmp_path: Path) -> None:
    app = make_app(tmp_path, batch_runner="threads", batch_workers=2)
    client = app.test_client()
    runner: InProcessRunner = app.extensions["shingan"].runner
    try:
        assert runner.processes == []
        unsigned = sample("unsigned.jpg").read_bytes()
        _, body, _ = post_files(
            client,
            [
                ("a.jpg", unsigned),
                ("b.jpg", unsigned),
                ("c.png", sample("ai_generated.png").read_bytes()),
            ],
        )
        done = wait_done(client, body["id"])
        by_name = {i["filename"]: i for i in done["items"]}
        assert by_name["a.jpg"]["report_id"] == by_name["b.jpg"]["report_id"]  # analysed once
        assert by_name["c.png"]["label"] == "ai_generated"
    finally:
        runner.stop()


def test_the_number_of_workers_defaults_to_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert load_config(env={}).batch_slots == 2
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert load_config(env={}).batch_slots == 4
    assert load_config(env={}, overrides={"batch_workers": 6}).batch_slots == 6
    assert load_config(env={}).batch_runner == "processes"
    assert load_config(env={"SHINGAN_BATCH_RUNNER": "Threads"}).batch_runner == "threads"


def test_a_process_that_cannot_load_its_configuration_fails_the_item_not_the_runner(
    tmp_path: Path,
) -> None:
    anchors = tmp_path / "root.pem"
    anchors.write_bytes((CA / "root.pem").read_bytes())
    runner, store, media = direct_runner(tmp_path, analyse_item, trust_anchors=[str(anchors)])
    anchors.unlink()  # gone after the service loaded it, before a process did
    runner.start()
    try:
        runner.submit(
            queue_batch(store, media, "c" * 32, [("a.jpg", sample("unsigned.jpg").read_bytes())])
        )
        wait_until(lambda: batch_done(store, "c" * 32), timeout=60)
        item = items_of(store, "c" * 32)["a.jpg"]
        assert item.error.code == "internal_error"
        assert "could not start" in item.error.message
        assert "root.pem" in item.error.message
        assert runner.processes[0].pid is None  # that process ended

        anchors.write_bytes((CA / "root.pem").read_bytes())  # mended: the next item starts one
        more = [("b.jpg", sample("camera_capture.jpg").read_bytes())]
        runner.submit(queue_batch(store, media, "d" * 32, more))
        wait_until(lambda: batch_done(store, "d" * 32), timeout=60)
        assert items_of(store, "d" * 32)["b.jpg"].label == "authentic"
    finally:
        runner.stop()
    store.close()
