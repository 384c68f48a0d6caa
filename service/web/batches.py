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

bp = Blueprint("batches", __name__, url_prefix="/v1/batches")


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
def results_csv(batch_id: str) -> Response:
    return batch_results(batch_id, "csv")


@bp.get("/<batch_id>/results.jsonl")
def results_jsonl(batch_id: str) -> Response:
    return batch_results(batch_id, "jsonl")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
