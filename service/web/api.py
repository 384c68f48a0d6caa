"""``/v1``: the JSON API platforms call."""

from __future__ import annotations

from typing import IO

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from provenance.c2pa import SIDECAR_MAX_BYTES, SidecarError, checked_sidecar
from service import contract
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
    binary_body,
    documented,
    openapi_document,
)

bp = Blueprint("api", __name__, url_prefix="/v1")

_TRUE = {"1", "true", "yes", "on"}
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
        done = st.verifier().verify(
            tmp,
            caller=actor(),
            filename=filename,
            language=negotiate(request.args.get("lang"), request.headers.get("Accept-Language")),
            thumbnails=request.args.get("thumbnails", "").lower() in _TRUE,
            forensics=request.args.get("forensics", "").lower() in _TRUE,
            manifest=manifest,
        )
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
        answers={200: Answer("the report", contract.Report), 404: "no report with that id"},
    )
)
def get_report(report_id: str) -> Response:
    """A report made earlier (reports are kept; media is not)."""
    return jsonify(state().reports().get(report_id, viewer()))


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
