"""``/v1/batches``: many files (or a zip of them) in one request, analysed in the background.

``POST /v1/batches`` stores the files and answers 202 at once with the batch id; workers
(in-process, or Celery with a broker) analyse the items; ``GET /v1/batches/<id>`` shows progress
and items; ``results.csv`` and ``results.jsonl`` give the results in the same shapes as
``shingan batch``. A webhook, if given, is called once the batch is done.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request, stream_with_context, url_for

from provenance.media import MediaTooLarge
from service import webhooks
from service.archive import ArchiveError, MemberUnreadable, is_zip, iter_members, open_member
from service.batch import CSV_FIELDS, Failure, csv_row, error_row, row_of
from service.media_store import new_holder
from service.messages import negotiate
from service.store import NewItem
from service.web.access import actor
from service.web.context import state
from service.web.errors import ApiError

bp = Blueprint("batches", __name__, url_prefix="/v1/batches")


def _limits() -> dict[str, Any]:
    cfg = state().config
    return {
        "max_members": cfg.max_batch_files,
        "max_total_bytes": cfg.max_batch_bytes,
        "max_ratio": cfg.max_zip_ratio,
    }


class _Budget:
    """The bytes a batch may still hold: its files in all, zips counted expanded."""

    def __init__(self, limit: int) -> None:
        self.limit, self.left = limit, limit

    def take(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise ApiError(
                413, "too_large", f"the batch holds over {self.limit} bytes (zips expanded)"
            )


def collect_items(files: list[tuple[str, Any]], holder: str) -> list[NewItem]:
    """Store every uploaded file (expanding zip archives) in the media store, each held for
    this intake (``holder``) until its batch is created.

    Raises:
        ApiError: a refused archive, more files or more bytes than a batch may hold.
    """
    st = state()
    max_bytes = st.options.limits.max_bytes
    limits = _limits()
    budget = _Budget(limits["max_total_bytes"])
    items: list[NewItem] = []

    def hold(sha: str) -> None:
        st.store.hold_media(holder, sha)

    def add(name: str, stream: Any) -> None:
        if len(items) >= limits["max_members"]:
            raise ApiError(
                400, "too_many_files", f"a batch holds at most {limits['max_members']} files"
            )
        try:
            sha, size = st.media.put_stream(stream, min(max_bytes, budget.left), hold)
        except MediaTooLarge as exc:
            if budget.left < max_bytes:
                budget.take(budget.left + 1)  # the batch, not the file, is over its limit
            items.append(NewItem(name, "", 0, (exc.code, exc.message)))
        else:
            budget.take(size)
            if size == 0:
                items.append(NewItem(name, sha, 0, ("empty_media", "the file is empty")))
            else:
                items.append(NewItem(name, sha, size))

    for name, stream in files:
        with tempfile.NamedTemporaryFile(dir=st.upload_dir, prefix="batch-") as tmp:
            total = 0
            while chunk := stream.read(1024 * 1024):
                total += len(chunk)
                if total > budget.left:
                    raise ApiError(413, "too_large", "the batch is over its size limit")
                tmp.write(chunk)
            tmp.flush()
            path = Path(tmp.name)
            if not is_zip(path):
                with path.open("rb") as fh:
                    add(name, fh)
                continue
            try:
                checks = {**limits, "max_total_bytes": budget.left}
                for member, zf in iter_members(path, **checks):
                    label = f"{name}/{member.name}"[:255]
                    try:
                        add(label, open_member(zf, member))
                    except ArchiveError:
                        raise
                    except MemberUnreadable as exc:
                        items.append(NewItem(label, "", 0, ("unreadable", f"cannot unpack: {exc}")))
            except ArchiveError as exc:
                status = 413 if exc.code == "too_large" else 400
                raise ApiError(status, exc.code, f"{name}: {exc.message}") from exc
    return items


def _webhook() -> tuple[str | None, str | None]:
    url = (request.form.get("webhook_url") or request.args.get("webhook_url") or "").strip()
    if not url:
        return None, None
    try:
        webhooks.check_url(url, state().config.webhook_allowed_hosts)
    except webhooks.WebhookRefused as exc:
        raise ApiError(400, "bad_webhook", str(exc)) from exc
    secret = request.form.get("webhook_secret") or request.args.get("webhook_secret")
    return url, secret or secrets.token_urlsafe(32)


def start_batch(files: list[tuple[str, Any]], language: str) -> dict[str, Any]:
    """Store the files, record the batch, queue its items; returns the batch status.

    A batch refused half-way (a zip bomb after other files were stored, a size limit) leaves
    nothing behind: the intake's holds are dropped and its files released.
    """
    st = state()
    webhook_url, webhook_secret = _webhook()
    holder = new_holder()
    try:
        items = collect_items(files, holder)
        if not items:
            raise ApiError(400, "missing_file", "the batch holds no files")
        batch_id = secrets.token_hex(16)
        queued = st.store.create_batch(
            batch_id,
            items,
            actor=actor(),
            language=language,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            holder=holder,
        )
    except BaseException:
        for sha in st.store.drop_holds(holder):
            st.media.release(sha, st.store)
        raise
    for sha in {it.sha256 for it in items if it.error and it.sha256}:
        st.media.release(sha, st.store)  # refused on arrival (empty): no item will read it
    st.store.audit_event(actor(), "batch_created", f"{batch_id}: {len(items)} files")
    st.runner.submit(queued)
    if not queued:
        st.store.complete_batch_if_done(batch_id)
    out = st.store.get_batch(batch_id) or {}
    if webhook_url and not (
        request.form.get("webhook_secret") or request.args.get("webhook_secret")
    ):
        out["webhook_secret"] = webhook_secret  # shown once: the caller verifies signatures with it
    return out


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
    out = start_batch(files, lang)
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


def owned_batch(batch_id: str) -> dict[str, Any]:
    """The batch, if the caller may see it: with keys in use, only its creator may."""
    st = state()
    batch = st.store.get_batch(batch_id) if len(batch_id) <= 64 else None
    if batch is None or (st.keys_required and batch["actor"] != actor()):
        raise ApiError(404, "not_found", "no batch with that id")
    return batch


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
    batch = owned_batch(batch_id)
    offset = _int_arg("offset", 0, 10**9)
    limit = _int_arg("limit", 1000, 10000)
    batch.pop("actor", None)
    batch["items"] = state().store.batch_items(batch_id, offset, limit)
    batch["links"] = _links(batch_id)
    return jsonify(batch)


def result_lines(batch_id: str, kind: str) -> Iterator[str]:
    """CSV or JSON Lines, in the same shapes as ``shingan batch``, one item at a time."""
    store = state().store
    if kind == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_FIELDS)
        yield buf.getvalue()
    for item, report in store.batch_results(batch_id):
        name = Path(item["filename"])
        if kind == "csv":
            buf = io.StringIO()
            writer = csv.writer(buf)
            if report is not None:
                row = row_of(name, report)
            elif item["status"] == "error":
                err = item["error"] or {}
                row = error_row(
                    name, Failure(item["sha256"], err.get("code") or "", err.get("message") or "")
                )
            else:
                row = error_row(
                    name, Failure(item["sha256"], "pending", f"not analysed yet ({item['status']})")
                )
            writer.writerow(csv_row(row))
            yield buf.getvalue()
        else:
            if report is not None:
                line: dict[str, Any] = {"path": str(name), **report}
            else:
                err = item["error"] or {
                    "code": "pending",
                    "message": f"not analysed yet ({item['status']})",
                }
                line = {"path": str(name), "sha256": item["sha256"], "error": err}
            yield json.dumps(line, ensure_ascii=False) + "\n"


def results_response(batch_id: str, kind: str) -> Response:
    """A batch's results (``csv`` or ``jsonl``) as a streamed download, for its owner."""
    owned_batch(batch_id)
    mimetype = "text/csv" if kind == "csv" else "application/x-ndjson"
    response = Response(stream_with_context(result_lines(batch_id, kind)), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="shingan-{batch_id}.{kind}"'
    return response


@bp.get("/<batch_id>/results.csv")
def results_csv(batch_id: str) -> Response:
    return results_response(batch_id, "csv")


@bp.get("/<batch_id>/results.jsonl")
def results_jsonl(batch_id: str) -> Response:
    return results_response(batch_id, "jsonl")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
