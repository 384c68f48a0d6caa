"""``/v1/batches``: many files (or a zip of them) in one request, analysed in the background.

``POST /v1/batches`` stores the files and answers 202 at once with the batch id; workers
(in-process, or Celery with a broker) analyse the items; ``GET /v1/batches/<id>`` shows progress
and items; ``results.csv`` and ``results.jsonl`` give the results in the same shapes as
``shingan batch``. A webhook, if given, is called once the batch is done.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request, url_for

from service.app.batches import Started
from service.messages import negotiate
from service.store import BatchRecord
from service.web.access import actor
from service.web.context import state
from service.web.downloads import batch_results
from service.web.errors import ApiError
from service.web.openapi import LANG, Answer, Batch, Operation, Param, binary_body, documented

bp = Blueprint("batches", __name__, url_prefix="/v1/batches")

_NO_BATCH = "no batch with that id (or not yours)"
_IN_ORDER = "one row or line per item, in upload order"


def _webhook() -> tuple[str | None, str | None]:
    url = (request.form.get("webhook_url") or request.args.get("webhook_url") or "").strip()
    secret = request.form.get("webhook_secret") or request.args.get("webhook_secret")
    return url or None, secret or None


def start_batch(files: list[tuple[str, Any]], language: str) -> Started:
    """Start a batch for the caller (the webhook from the form or query, if any)."""
    url, secret = _webhook()
    return (
        state()
        .batches()
        .start(files, language=language, caller=actor(), webhook_url=url, webhook_secret=secret)
    )


@bp.post("")
@documented(
    Operation(
        "createBatch",
        "Analyse many files (or zip archives of them) in the background",
        description=(
            "Send files as multipart `file` fields (zips among them are expanded), or one "
            "zip as the raw body. Archives are refused for unsafe paths or links, too "
            "many members, or an expansion ratio over the limit. Identical files are "
            "analysed once. With `webhook_url`, the finished batch is POSTed there, "
            "signed: header `Shingan-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "
            "'<t>.' + body>` with `webhook_secret` (generated and returned once if not "
            "given); failures are retried with exponential back-off."
        ),
        params=(Param("filename", {"type": "string"}, "name of a raw-body zip"), LANG),
        body={
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {
                                "type": "string",
                                "contentMediaType": "application/octet-stream",
                            },
                        },
                        "webhook_url": {"type": "string", "format": "uri"},
                        "webhook_secret": {"type": "string"},
                    },
                    "required": ["file"],
                }
            },
            **binary_body("application/zip"),
        },
        answers={
            202: Answer("accepted; poll the Location", Batch, headers={"Location": ""}),
            400: "no files; unsafe_archive, zip_bomb, too_many_files, bad_archive, bad_webhook",
            413: "the batch is over its size limit",
        },
    )
)
def create() -> tuple[Response, int]:
    """Several files as multipart ``file`` fields, or one zip (multipart or raw body)."""
    files: list[tuple[str, Any]]
    if request.mimetype == "multipart/form-data":
        uploads = request.files.getlist("file") + request.files.getlist("files")
        files = [(u.filename or f"file-{i}", u.stream) for i, u in enumerate(uploads)]
    else:
        if request.content_length == 0 or (
            request.content_length is None and not request.headers.get("Transfer-Encoding")
        ):
            raise ApiError(400, "missing_file", "send files as multipart 'file' fields or a zip")
        files = [(request.args.get("filename") or "upload.zip", request.stream)]
    if not files:
        raise ApiError(400, "missing_file", "send files as multipart 'file' fields or a zip")
    lang = negotiate(request.args.get("lang"), request.headers.get("Accept-Language"))
    out = start_batch(files, lang).to_dict()
    out["links"] = _links(out["id"])
    response = jsonify(out)
    response.headers["Location"] = url_for("batches.show", batch_id=out["id"])
    return response, 202


def _links(batch_id: str) -> dict[str, str]:
    return {
        "self": url_for("batches.show", batch_id=batch_id),
        "results_csv": url_for("batches.results_csv", batch_id=batch_id),
        "results_jsonl": url_for("batches.results_jsonl", batch_id=batch_id),
    }


def owned_batch(batch_id: str) -> BatchRecord:
    """The batch, if the caller may see it: with keys in use, only its creator may."""
    return state().batches().owned(batch_id, actor())


def _int_arg(name: str, default: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, "bad_request", f"{name} must be a whole number") from exc
    if not 0 <= value <= high:
        raise ApiError(400, "bad_request", f"{name} must be between 0 and {high}")
    return value


@bp.get("/<batch_id>")
@documented(
    Operation(
        "getBatch",
        "Status, progress and items of a batch",
        params=(
            Param("offset", {"type": "integer", "minimum": 0, "default": 0}),
            Param("limit", {"type": "integer", "minimum": 0, "maximum": 10000, "default": 1000}),
        ),
        answers={
            200: Answer("the batch with a page of its items", Batch),
            400: "bad offset or limit",
            404: _NO_BATCH,
        },
    )
)
def show(batch_id: str) -> Response:
    batch = owned_batch(batch_id).to_dict()
    offset = _int_arg("offset", 0, 10**9)
    limit = _int_arg("limit", 1000, 10000)
    batch.pop("actor", None)
    batch["items"] = [
        i.to_dict() for i in state().store.batches.batch_items(batch_id, offset, limit)
    ]
    batch["links"] = _links(batch_id)
    return jsonify(batch)


@bp.get("/<batch_id>/results.csv")
@documented(
    Operation(
        "getBatchResultsCsv",
        "Results as CSV (the columns of `shingan batch`)",
        answers={200: Answer(_IN_ORDER, media_type="text/csv"), 404: _NO_BATCH},
    )
)
def results_csv(batch_id: str) -> Response:
    return batch_results(batch_id, "csv")


@bp.get("/<batch_id>/results.jsonl")
@documented(
    Operation(
        "getBatchResultsJsonl",
        "Results as JSON Lines: one report (or error) per item",
        answers={200: Answer(_IN_ORDER, media_type="application/jsonl"), 404: _NO_BATCH},
    )
)
def results_jsonl(batch_id: str) -> Response:
    return batch_results(batch_id, "jsonl")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
