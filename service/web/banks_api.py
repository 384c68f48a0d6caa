"""``/v1/banks``: known-media banks kept in the database, shared by every verification.

Create a bank, add entries from media files (their PDQ hashes; a video's sampled frames) or
from a bank CSV, export a bank as CSV to exchange with other organisations, delete a bank.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request, stream_with_context

from provenance.media import MediaError
from service.banks import (
    BANK_NAME,
    LABELS,
    BankEntry,
    BankError,
    entries_from_media,
    parse_bank_csv,
    write_entries,
)
from service.store import StoreConflict
from service.web import received_upload, state
from service.web.access import actor
from service.web.batches import allow_batch_body
from service.web.errors import ApiError

bp = Blueprint("banks", __name__, url_prefix="/v1/banks")

_MAX_CSV_BYTES = 256 * 1024 * 1024


def _bank_or_404(name: str) -> dict[str, Any]:
    bank = state().store.get_bank(name) if BANK_NAME.match(name) else None
    if bank is None:
        raise ApiError(404, "not_found", "no bank with that name")
    return bank


@bp.get("")
def list_banks() -> Response:
    return jsonify({"banks": state().store.list_banks()})


@bp.post("")
def create_bank() -> tuple[Response, int]:
    data = request.get_json(silent=True)
    name = create(data if isinstance(data, dict) else request.form.to_dict())
    return jsonify(state().store.get_bank(name)), 201


def create(fields: Mapping[str, Any]) -> str:
    """Check and create a bank from request fields (API JSON or the page's form); its name.

    Raises:
        ApiError: a bad name or label (400), a name in use (409).
    """
    name = str(fields.get("name") or "").strip()
    label = str(fields.get("label") or "").strip()
    if not BANK_NAME.match(name):
        raise ApiError(
            400, "bad_request", "name: 1-64 letters, digits, '.', '_' or '-', starting alphanumeric"
        )
    if label not in LABELS:
        raise ApiError(400, "bad_request", f"label must be one of {', '.join(LABELS)}")
    note, source = (str(fields.get(k) or "")[:2000] for k in ("note", "source"))
    st = state()
    try:
        st.store.create_bank(name, label, note, source)
    except StoreConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    st.store.audit_event(actor(), "bank_created", name)
    return name


@bp.delete("/<name>")
def delete_bank(name: str) -> tuple[str, int]:
    _bank_or_404(name)
    st = state()
    st.store.delete_bank(name)
    st.store.audit_event(actor(), "bank_deleted", name)
    return "", 204


def add_files(name: str, uploads: list[Any]) -> tuple[int, list[dict[str, str]]]:
    """Hash uploaded media into the bank; returns (entries added, per-file errors)."""
    bank = _bank_or_404(name)
    st = state()
    label = request.form.get("label") or bank["label"]
    if label not in LABELS:
        raise ApiError(400, "bad_request", f"label must be one of {', '.join(LABELS)}")
    note = (request.form.get("note") or "")[:2000]
    source = (request.form.get("source") or "")[:2000]
    entries: list[BankEntry] = []
    errors: list[dict[str, str]] = []
    for upload in uploads:
        filename = (upload.filename or "file")[:200]
        try:
            with received_upload(upload.stream, "bank-") as (tmp, _):
                entries.extend(
                    entries_from_media(tmp, filename, name, label, st.options.limits, note, source)
                )
        except MediaError as exc:
            errors.append({"file": filename, "code": exc.code, "message": exc.message})
    added = st.store.add_bank_entries(name, entries)
    st.store.audit_event(actor(), "bank_entries_added", f"{name}: {added}")
    return added, errors


@bp.post("/<name>/entries")
def add_entries(name: str) -> Response:
    """Media files as multipart ``file`` fields, or a bank CSV (``text/csv`` body or a
    multipart ``csv`` field); rows keep their own labels."""
    allow_batch_body()  # several files, or a large CSV
    bank = _bank_or_404(name)
    st = state()
    if request.mimetype == "multipart/form-data":
        uploads = request.files.getlist("file")
        csv_upload = request.files.get("csv")
        if csv_upload is None:
            if not uploads:
                raise ApiError(400, "missing_file", "send media as 'file' fields or a 'csv' field")
            added, errors = add_files(name, uploads)
            return jsonify({"bank": name, "added": added, "errors": errors})
        raw = csv_upload.stream.read(_MAX_CSV_BYTES + 1)
    elif request.mimetype in ("text/csv", "text/plain"):
        raw = request.stream.read(_MAX_CSV_BYTES + 1)
    else:
        raise ApiError(415, "unsupported_media_type", "send multipart/form-data or text/csv")
    if len(raw) > _MAX_CSV_BYTES:
        raise ApiError(413, "too_large", "the CSV is over 256 MiB")
    try:
        text = raw.decode("utf-8-sig")
        rows = parse_bank_csv(io.StringIO(text, newline=""), "upload", default_bank=name)
    except UnicodeDecodeError as exc:
        raise ApiError(400, "bad_csv", "the CSV is not UTF-8") from exc
    except BankError as exc:
        raise ApiError(400, "bad_csv", str(exc)) from exc
    added = st.store.add_bank_entries(bank["name"], rows)
    st.store.audit_event(actor(), "bank_imported", f"{name}: {added}")
    return jsonify({"bank": name, "added": added, "errors": []})


@bp.get("/<name>/entries.csv")
def export(name: str) -> Response:
    _bank_or_404(name)
    store = state().store

    def lines() -> Any:
        buf = io.StringIO()
        header = True
        for e in store.bank_entries(bank=name):
            write_entries(buf, [BankEntry.of(e)], header=header)
            header = False
            if buf.tell() > 64 * 1024:
                yield buf.getvalue()
                buf = io.StringIO()
        if header:
            write_entries(buf, [], header=True)
        yield buf.getvalue()

    response = Response(stream_with_context(lines()), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
