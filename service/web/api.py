"""``/v1``: the JSON API platforms call."""

from __future__ import annotations

from typing import IO, Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request, url_for

from provenance.c2pa import SIDECAR_MAX_BYTES, SidecarError, checked_sidecar
from provenance.media import check_type
from service import contract
from service.app.exports import claim_review
from service.app.jobs import Job
from service.messages import negotiate
from service.web.access import actor, viewer
from service.web.context import received_upload, state
from service.web.counters import count_verdict
from service.web.errors import ApiError
from service.web.openapi import (
    LANG,
    Answer,
    Operation,
    Param,
    VerifyJob,
    binary_body,
    documented,
    openapi_document,
)

bp = Blueprint("api", __name__, url_prefix="/v1")

_TRUE = {"1", "true", "yes", "on"}
_NO_JOB = "no job with that id (jobs are kept an hour after they end)"
_NO_REPORT = "no report with that id"
_FLAG = {"type": "boolean", "default": False}
_BINARY = {"type": "string", "contentMediaType": "application/octet-stream"}


@bp.post("/verify")
@documented(
    Operation(
        "verify",
        "Analyse one file and return its report",
        description=(
            "Send the file as multipart field `file`, or as the raw body with any "
            "Content-Type. The type is detected from the bytes. Nothing is kept "
            "after the response."
        ),
        params=(
            Param("thumbnails", _FLAG, "include C2PA thumbnails as data: URIs"),
            LANG,
            Param("forensics", _FLAG, "include error-level and noise maps as data: URIs"),
            Param(
                "filename",
                {"type": "string", "maxLength": 255},
                "name to record for a raw-body upload",
            ),
            Param(
                "async",
                _FLAG,
                "answer 202 at once with a job to poll (GET /v1/jobs/{job_id}) instead of the "
                "report: for videos and other long analyses",
            ),
        ),
        body={
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": _BINARY,
                        "manifest": {
                            **_BINARY,
                            "description": "a sidecar C2PA manifest store (.c2pa) for the file",
                        },
                    },
                    "required": ["file"],
                }
            },
            **binary_body("application/octet-stream", "*/*"),
        },
        answers={
            200: Answer(
                "the report",
                contract.Report,
                headers={"X-Shingan-Report-Id": "the report's id"},
            ),
            202: Answer("with async=1: the job", VerifyJob, headers={"Location": "the job"}),
            400: "no file, or an empty one; bad_manifest: an empty or oversized sidecar",
            413: "the file is over the size limit",
            415: "not a supported image, video or audio format",
            422: "corrupt, or over the pixel limit",
        },
    )
)
def verify() -> Response:
    """Analyse one file sent as multipart ``file`` or as the raw request body."""
    st = state()
    multipart = request.mimetype == "multipart/form-data"
    declared = request.content_length  # the gate refused an over-limit one before its body

    filename: str | None
    source: IO[bytes]
    manifest: bytes | None = None
    if multipart:
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(400, "missing_file", "send the file in a multipart field named 'file'")
        filename = upload.filename or None
        source = upload.stream
        sidecar = request.files.get("manifest")
        if sidecar is not None:
            try:
                manifest = checked_sidecar(sidecar.stream.read(SIDECAR_MAX_BYTES + 1))
            except SidecarError as exc:
                raise ApiError(400, exc.code, exc.message) from exc
    else:
        if declared == 0 or (declared is None and not request.headers.get("Transfer-Encoding")):
            raise ApiError(
                400,
                "missing_file",
                "send the file as the request body or in a multipart field named 'file'",
            )
        filename = request.args.get("filename") or None
        source = request.stream

    with received_upload(source, "upload-") as (tmp, received):
        if received == 0:
            raise ApiError(400, "missing_file", "the uploaded file is empty")
        settings: dict[str, Any] = {
            "caller": actor(),
            "filename": filename,
            "language": negotiate(request.args.get("lang"), request.headers.get("Accept-Language")),
            "thumbnails": request.args.get("thumbnails", "").lower() in _TRUE,
            "forensics": request.args.get("forensics", "").lower() in _TRUE,
            "manifest": manifest,
        }
        if request.args.get("async", "").lower() in _TRUE:
            check_type(tmp)  # a file of no supported type is refused now, not in the job
            job = st.jobs.submit(tmp, **settings)
            accepted = jsonify(_job_json(job))
            accepted.status_code = 202
            accepted.headers["Location"] = url_for("api.get_job", job_id=job.id)
            return accepted
        done = st.verifier().verify(tmp, **settings)
    report, data = done.report, done.data
    count_verdict(st.metrics, data)
    response = jsonify(data)
    response.headers["X-Shingan-Report-Id"] = report.id
    response.headers["Content-Language"] = report.verdict.language
    response.headers["Vary"] = "Accept-Language"
    return response


@bp.get("/reports/<report_id>")
@documented(
    Operation(
        "getReport",
        "A report made earlier (reports are kept; media is not)",
        answers={200: Answer("the report", contract.Report), 404: _NO_REPORT},
    )
)
def get_report(report_id: str) -> Response:
    """A report made earlier (reports are kept; media is not)."""
    return jsonify(state().reports().get(report_id, viewer()))


def _job_json(job: Job) -> dict[str, Any]:
    data = job.to_dict()
    data["links"] = {"self": url_for("api.get_job", job_id=job.id)}
    if job.report_id:
        data["links"]["report"] = url_for("api.get_report", report_id=job.report_id)
    return data


@bp.get("/jobs/<job_id>")
@documented(
    Operation(
        "getJob",
        "A verification running as a job: frames done of the total, time left, the report's id",
        answers={200: Answer("the job", VerifyJob), 404: _NO_JOB},
    )
)
def get_job(job_id: str) -> Response:
    return jsonify(_job_json(state().jobs.get(job_id, viewer())))


@bp.delete("/jobs/<job_id>")
@documented(
    Operation(
        "cancelJob",
        "Cancel a job: a queued one never starts, a running one stops at its next frame",
        answers={202: Answer("cancelling; poll the job", VerifyJob), 404: _NO_JOB},
    )
)
def cancel_job(job_id: str) -> tuple[Response, int]:
    return jsonify(_job_json(state().jobs.cancel(job_id, viewer()))), 202


@bp.get("/reports/<report_id>/claimreview")
@documented(
    Operation(
        "getClaimReview",
        "A schema.org ClaimReview JSON-LD draft of a report, to finish and publish",
        description=(
            "Filled with what the report established; the claim, the rating, the author, the "
            "article's URL and date are left empty for the person publishing."
        ),
        answers={200: Answer("the draft", media_type="application/ld+json"), 404: _NO_REPORT},
    )
)
def get_claim_review(report_id: str) -> Response:
    draft = claim_review(state().reports().get(report_id, viewer()))
    response = jsonify(draft)
    response.mimetype = "application/ld+json"
    return response


@bp.get("/openapi.json")
@documented(
    Operation(
        "openapi",
        "This document",
        answers={200: Answer("OpenAPI 3.1 document", media_type="application/json")},
    )
)
def openapi() -> Response:
    return jsonify(openapi_document(current_app))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
