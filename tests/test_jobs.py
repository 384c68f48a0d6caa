"""Verifications as jobs: progress, time left, cancel, and the API's async=1."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from service.app.errors import NotFound
from service.app.jobs import Job, VerifyJobs
from service.stages import Cancelled
from service.store import Viewer
from service.web import create_app
from tests.conftest import CA, sample


class SlowVerifier:
    """Stands in for the verify flow: 50 'frames', stopping when asked."""

    def __init__(self) -> None:
        self.started = threading.Event()

    def verify(self, path: Path, *, progress: Any, **_: Any) -> Any:
        self.started.set()
        for i in range(50):
            if progress.cancelled():
                raise Cancelled("stopped")
            progress.frames(i, 50)
            time.sleep(0.05)
        raise AssertionError("should have been cancelled")


def wait_for(job: Job, *states: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while job.status not in states:
        assert time.monotonic() < deadline, job
        time.sleep(0.02)


def test_a_running_job_reports_progress_and_stops_when_cancelled(tmp_path: Path) -> None:
    slow = SlowVerifier()
    released: list[str] = []
    jobs = VerifyJobs(
        lambda: slow,  # type: ignore[arg-type,return-value]
        tmp_path,
        workers=1,
        acquire=lambda who: None,
        release=released.append,
    )
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"x")
    job = jobs.submit(upload, caller="key:desk", filename="clip.mp4", language="en")
    assert not upload.exists()  # taken over by the job
    assert slow.started.wait(10)
    deadline = time.monotonic() + 10
    while job.frames_done < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert job.status == "running"
    data = job.to_dict()
    assert data["progress"]["frames_total"] == 50
    assert (data["eta_s"] or 0) > 0
    with pytest.raises(NotFound):
        jobs.get(job.id, Viewer("key:other"))  # another caller's job looks missing
    jobs.cancel(job.id, Viewer("key:desk"))
    wait_for(job, "cancelled")
    assert released == ["job:key:desk"]  # its analysis slot went back
    assert not list(tmp_path.glob("job-*"))  # its copy of the upload is gone
    jobs.close()


def test_a_queued_job_cancelled_never_starts(tmp_path: Path) -> None:
    slow = SlowVerifier()
    busy = threading.Event()
    jobs = VerifyJobs(
        lambda: slow,  # type: ignore[arg-type,return-value]
        tmp_path,
        workers=1,
        acquire=lambda who: None if busy.is_set() else (503, "busy", "no slot"),
        release=lambda who: None,
    )
    upload = tmp_path / "u"
    upload.write_bytes(b"x")
    job = jobs.submit(upload, caller="web", filename=None, language="en")
    time.sleep(0.2)
    assert job.status == "queued"  # waiting for a slot
    jobs.cancel(job.id, None)
    wait_for(job, "cancelled")
    assert not slow.started.is_set()
    jobs.close()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app({"data_dir": str(tmp_path / "data"), "trust_anchors": [str(CA / "root.pem")]})
    yield app
    app.extensions["shingan"].runner.stop()


def test_the_api_answers_202_and_a_job_to_poll(app: Flask) -> None:
    client = app.test_client()
    with sample("signed_video.mp4").open("rb") as fh:
        res = client.post("/v1/verify?async=1", data={"file": (fh, "clip.mp4")})
    assert res.status_code == 202, res.get_data(as_text=True)
    job = res.get_json()
    assert res.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] in ("queued", "running", "done")
    deadline = time.monotonic() + 120
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
        job = client.get(res.headers["Location"]).get_json()
    assert job["status"] == "done", job
    from jsonschema import Draft202012Validator

    from service.web.openapi import components

    schema = {"$ref": "#/components/schemas/VerifyJob", "components": {"schemas": components()}}
    assert not list(Draft202012Validator(schema).iter_errors(job))  # the document says it
    assert job["progress"]["frames_total"] >= 1
    assert job["progress"]["frames_done"] == job["progress"]["frames_total"]
    assert app.extensions["shingan"].jobs.get(job["id"], None).pictures == {}  # none for APIs
    report = client.get(job["links"]["report"]).get_json()
    assert report["media"]["kind"] == "video"
    assert report["verdict"]["label"] == "authentic"
    draft = client.get(f"/v1/reports/{job['report_id']}/claimreview")
    assert draft.mimetype == "application/ld+json"
    assert draft.get_json()["@type"] == "ClaimReview"
    cancelled = client.delete(res.headers["Location"])
    assert cancelled.status_code == 202  # cancelling a finished job changes nothing
    assert cancelled.get_json()["status"] == "done"
    assert client.get("/v1/jobs/" + "0" * 32).status_code == 404


def test_an_async_upload_of_no_media_type_is_refused_at_once(app: Flask) -> None:
    res = app.test_client().post(
        "/v1/verify?async=1", data={"file": (io.BytesIO(b"just text"), "notes.txt")}
    )
    assert res.status_code == 415
    assert res.get_json()["error"]["code"] == "unsupported_media_type"
