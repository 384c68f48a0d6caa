"""``/v1/banks``: known-media banks kept in the database, shared by every verification.

Create a bank, add entries from media files (their PDQ hashes; a video's sampled frames) or
from a bank CSV, export a bank as CSV to exchange with other organisations, delete a bank.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator, Mapping
from typing import IO, Any

from flask import Blueprint, Flask, Response, jsonify, request, stream_with_context

from provenance.media import MediaError, MediaTooLarge, copy_limited
from service.banks import (
    BANK_NAME,
    LABELS,
    BankEntry,
    BankError,
    entries_from_media,
    iter_bank_csv,
    write_entries,
)
from service.store import StoreConflict
from service.web.access import actor, viewer
from service.web.context import received_upload, state
from service.web.errors import ApiError

bp = Blueprint("banks", __name__, url_prefix="/v1/banks")

_MAX_CSV_BYTES = 256 * 1024 * 1024


def _bank_or_404(name: str, *, write: bool = False) -> dict[str, Any]:
    """The bank if the caller may see it (404 otherwise); with ``write``, only if the caller
    may change it (403 for a bank shared read-only)."""
    bank = state().store.get_bank(name, viewer()) if BANK_NAME.match(name) else None
    if bank is None:
        raise ApiError(404, "not_found", "no bank with that name")
    if write and not bank["writable"]:
        raise ApiError(
            403,
            "forbidden",
            "this bank is shared read-only; only its owner or an admin key may change it",
        )
    return bank


@bp.get("")
def list_banks() -> Response:
    return jsonify({"banks": state().store.list_banks(viewer())})


@bp.post("")
def create_bank() -> tuple[Response, int]:
    data = request.get_json(silent=True)
    name = create(data if isinstance(data, dict) else request.form.to_dict())
    return jsonify(state().store.get_bank(name, viewer())), 201


def create(fields: Mapping[str, Any]) -> str:
    """Check and create a bank from request fields (API JSON or the page's form); its name.

    The bank belongs to the caller. With keys in use it is private unless an admin key asks
    for ``shared`` (used by every caller's verifications, read-only to them): a shared bank
    decides other people's verdicts, so only admins may make one. Without keys (one trusted
    user) every bank is shared.

    Raises:
        ApiError: a bad name or label (400), ``shared`` asked by a non-admin (403), a name in
            use (409).
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
    who = viewer()
    asked = str(fields.get("shared", "")).strip().lower() in ("1", "true", "yes", "on")
    if who is not None and asked and not who.admin:
        raise ApiError(403, "forbidden", "only an admin key may create a shared bank")
    shared = who is None or asked
    try:
        st.store.create_bank(name, label, note, source, owner=actor(), shared=shared)
    except StoreConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    st.store.audit_event(actor(), "bank_created", name)
    return name


@bp.delete("/<name>")
def delete_bank(name: str) -> tuple[str, int]:
    _bank_or_404(name, write=True)
    st = state()
    st.store.delete_bank(name)
    st.store.audit_event(actor(), "bank_deleted", name)
    return "", 204


def add_files(name: str, uploads: list[Any]) -> tuple[int, list[dict[str, str]]]:
    """Hash uploaded media into the bank; returns (entries added, per-file errors)."""
    bank = _bank_or_404(name, write=True)
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
    bank = _bank_or_404(name, write=True)
    st = state()
    if request.mimetype == "multipart/form-data":
        uploads = request.files.getlist("file")
        csv_upload = request.files.get("csv")
        if csv_upload is None:
            if not uploads:
                raise ApiError(400, "missing_file", "send media as 'file' fields or a 'csv' field")
            added, errors = add_files(name, uploads)
            return jsonify({"bank": name, "added": added, "errors": errors})
        source = csv_upload.stream
    elif request.mimetype in ("text/csv", "text/plain"):
        source = request.stream
    else:
        raise ApiError(415, "unsupported_media_type", "send multipart/form-data or text/csv")
    added = import_csv(bank["name"], source)
    st.store.audit_event(actor(), "bank_imported", f"{name}: {added}")
    return jsonify({"bank": name, "added": added, "errors": []})


def import_csv(bank: str, source: IO[bytes]) -> int:
    """Import a bank CSV into ``bank`` in bounded memory: the upload is spooled to a file,
    checked row by row as a whole first (nothing is added if any row is bad), then inserted in
    chunks in one transaction.

    Raises:
        ApiError: over the CSV limit (413), not UTF-8 or not a bank CSV (400).
    """
    st = state()
    with tempfile.TemporaryFile(dir=st.upload_dir, prefix="bank-csv-") as spool:
        try:
            copy_limited(source, spool, _MAX_CSV_BYTES)
        except MediaTooLarge as exc:
            raise ApiError(413, "too_large", "the CSV is over 256 MiB") from exc

        def rows() -> Iterator[BankEntry]:
            spool.seek(0)
            text = io.TextIOWrapper(spool, encoding="utf-8-sig", newline="")
            try:
                yield from iter_bank_csv(text, "upload", default_bank=bank)
            finally:
                text.detach()

        try:
            for _ in rows():  # a full check first: one bad row refuses the whole file
                pass
            return st.store.add_bank_entries(bank, rows())
        except BankError as exc:
            message = str(exc)
            if "codec can't decode" in message:
                raise ApiError(400, "bad_csv", "the CSV is not UTF-8") from exc
            raise ApiError(400, "bad_csv", message) from exc


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
