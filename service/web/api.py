"""``/v1``: the JSON API platforms call."""

from __future__ import annotations

from typing import IO

from flask import Blueprint, Flask, Response, jsonify, request

from service.messages import negotiate
from service.web.access import actor, viewer
from service.web.context import received_upload, state
from service.web.counters import count_verdict
from service.web.errors import ApiError
from service.web.openapi import openapi_document

bp = Blueprint("api", __name__, url_prefix="/v1")

_TRUE = {"1", "true", "yes", "on"}


@bp.post("/verify")
def verify() -> Response:
    """Analyse one file sent as multipart ``file`` or as the raw request body."""
    st = state()
    multipart = request.mimetype == "multipart/form-data"
    declared = request.content_length  # the gate refused an over-limit one before its body

    filename: str | None
    source: IO[bytes]
    if multipart:
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(400, "missing_file", "send the file in a multipart field named 'file'")
        filename = upload.filename or None
        source = upload.stream
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
        done = st.verifier().verify(
            tmp,
            caller=actor(),
            filename=filename,
            language=negotiate(request.args.get("lang"), request.headers.get("Accept-Language")),
            thumbnails=request.args.get("thumbnails", "").lower() in _TRUE,
            forensics=request.args.get("forensics", "").lower() in _TRUE,
        )
    report, data = done.report, done.data
    count_verdict(st.metrics, data)
    response = jsonify(data)
    response.headers["X-Shingan-Report-Id"] = report.id
    response.headers["Content-Language"] = report.verdict.language
    response.headers["Vary"] = "Accept-Language"
    return response


@bp.get("/reports/<report_id>")
def get_report(report_id: str) -> Response:
    """A report made earlier (reports are kept; media is not)."""
    data = state().store.reports.get_report(report_id, viewer()) if len(report_id) <= 64 else None
    if data is None:
        raise ApiError(404, "not_found", "no report with that id")
    return jsonify(data)


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
