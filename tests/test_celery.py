"""Batches on Celery workers against a real Redis: shared work, a worker killed mid-batch.

CI (.ci/run) installs and starts redis-server and sets SHINGAN_TEST_REDIS_URL; then these
tests must run (a missing server is a failure). Elsewhere they start their own redis-server if
the binary exists, and skip with the reason otherwise.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from service.store import Store
from service.store.db import ItemRow, ReportRow
from service.web import create_app
from tests.conftest import free_port

CI_REDIS = os.environ.get("SHINGAN_TEST_REDIS_URL")


def _ping(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if CI_REDIS:
        if not _ping(CI_REDIS):
            pytest.fail(f"SHINGAN_TEST_REDIS_URL={CI_REDIS} is set but Redis does not answer")
        yield CI_REDIS
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (CI installs it; apt-get install redis-server)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 20
    while not _ping(url):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("redis-server did not start")
        time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _images(n: int, seed: int) -> list[tuple[str, bytes]]:
    """Distinct photos-sized JPEGs (each takes a noticeable time to analyse)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        base = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((1600, 1200), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=92)
        out.append((f"photo-{i:03d}.jpg", buf.getvalue()))
    return out


def _worker(env: dict[str, str], name: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker", "--name", f"{name}@test"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_two_workers_share_a_batch_and_a_killed_worker_loses_and_duplicates_nothing(
    tmp_path: Path, redis_url: str
) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    data = tmp_path / "data"
    settings = {
        "SHINGAN_DATA_DIR": str(data),
        "SHINGAN_BROKER_URL": redis_url,
        "SHINGAN_BROKER_VISIBILITY_TIMEOUT_S": "6",
        "SHINGAN_ONNX_THREADS": "1",
    }
    env = {**os.environ, **settings}
    app = create_app(
        {
            "data_dir": str(data),
            "broker_url": redis_url,
            "broker_visibility_timeout_s": 6,
        }
    )
    client = app.test_client()
    files = _images(24, seed=7)
    files.append(("copy-of-photo-000.jpg", files[0][1]))  # same content: analysed once
    workers = {name: _worker(env, name, tmp_path / f"{name}.log") for name in ("alpha", "beta")}
    try:
        res = client.post(
            "/v1/batches",
            data={"file": [(io.BytesIO(b), n) for n, b in files]},
            content_type="multipart/form-data",
            follow_redirects=True,  # so that closing the response closes the request body file
        )
        res.close()
        assert res.status_code == 202, res.get_json()
        batch_id = res.get_json()["id"]
        store = Store(app.extensions["shingan"].store.url)

        def counts() -> dict[str, int]:
            batch = store.batches.get_batch(batch_id)
            assert batch is not None
            return dict(batch.counts)

        # Kill one worker while both are busy, after some results exist.
        deadline = time.monotonic() + 240
        while True:
            c = counts()
            if c["done"] >= 2 and c["running"] >= 2:
                break
            assert time.monotonic() < deadline, f"workers did not both start: {c}"
            for name, proc in workers.items():
                assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()[-3000:]
            time.sleep(0.05)
        workers["alpha"].send_signal(signal.SIGKILL)
        workers["alpha"].wait(timeout=10)
        killed_at = counts()

        deadline = time.monotonic() + 300
        while (batch := store.batches.get_batch(batch_id)) and batch.status != "done":
            assert time.monotonic() < deadline, f"batch did not finish: {batch.counts}"
            assert workers["beta"].poll() is None
            time.sleep(0.2)

        items = store.batches.batch_items(batch_id)
        assert len(items) == len(files)
        assert all(i.status == "done" and i.report_id for i in items), items
        with store.db.read() as s:
            per_item = s.execute(select(ItemRow.report_id)).scalars().all()
            reports = s.scalar(
                select(func.count()).select_from(ReportRow).where(ReportRow.batch_id == batch_id)
            )
        # Exactly one result per item; the duplicate file reuses its twin's report.
        assert len(set(per_item)) == len(files) - 1 == reports
        assert items[0].report_id == items[-1].report_id
        # The killed worker's item was taken over (claimed a second time), not lost.
        assert killed_at["running"] >= 2
        assert any(i.attempts >= 2 for i in items)
        # Both workers did work: beta alone could not have finished items before the kill
        # while alpha was also running one.
        log_alpha = (tmp_path / "alpha.log").read_text(errors="replace")
        assert "shingan.analyze_item" in log_alpha
        assert "succeeded" in log_alpha

        with client.get(f"/v1/batches/{batch_id}/results.csv") as got:
            csv_text = got.get_data(as_text=True)
        assert len(csv_text.strip().splitlines()) == len(files) + 1
        store.close()
    finally:
        for proc in workers.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


def test_worker_refuses_to_start_without_a_broker(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SHINGAN_BROKER_URL"}
    env["SHINGAN_DATA_DIR"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "service.cli", "worker"], env=env, capture_output=True, timeout=60
    )
    assert proc.returncode == 2
    assert b"SHINGAN_BROKER_URL" in proc.stderr
