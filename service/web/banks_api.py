"""``/v1/banks``: known-media banks kept in the database, shared by every verification.

Create a bank, add entries from media files (their PDQ hashes; a video's sampled frames) or
from a bank CSV, export a bank as CSV to exchange with other organisations, delete a bank. The
work is :class:`service.app.banks.Banks`'s; this blueprint parses requests and renders answers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request

from service.web.access import actor, viewer
from service.web.context import received_upload, state
from service.web.downloads import bank_csv
from service.web.errors import ApiError
from service.web.openapi import (
    Answer,
    Bank,
    BankEntriesAdded,
    BankList,
    NewBank,
    Operation,
    documented,
    json_body,
)

bp = Blueprint("banks", __name__, url_prefix="/v1/banks")

_NO_BANK = "no bank of that name"


@bp.get("")
@documented(
    Operation(
        "listBanks",
        "Known-media banks, with their entry counts",
        answers={200: Answer("the banks", BankList)},
    )
)
def list_banks() -> Response:
    return jsonify({"banks": [b.to_dict() for b in state().store.banks.list_banks(viewer())]})


@bp.post("")
@documented(
    Operation(
        "createBank",
        "Create a bank",
        body=json_body(NewBank),
        answers={
            201: Answer("created", Bank),
            400: "bad name or label",
            409: "a bank of that name exists",
        },
    )
)
def create_bank() -> tuple[Response, int]:
    data = request.get_json(silent=True)
    fields = data if isinstance(data, dict) else request.form.to_dict()
    banks = state().banks()
    name = banks.create(fields, actor(), viewer())
    return jsonify(banks.visible(name, viewer()).to_dict()), 201


@bp.delete("/<name>")
@documented(
    Operation(
        "deleteBank",
        "Delete a bank and its entries",
        answers={204: Answer("deleted"), 404: _NO_BANK},
    )
)
def delete_bank(name: str) -> tuple[str, int]:
    state().banks().delete(name, actor(), viewer())
    return "", 204


@contextlib.contextmanager
def _received(upload: Any) -> Iterator[Path]:
    """An upload received to a temporary file, deleted afterwards."""
    with received_upload(upload.stream, "bank-") as (tmp, _):
        yield tmp


def add_files(name: str, uploads: list[Any]) -> tuple[int, list[dict[str, str]]]:
    """Hash uploaded media into the bank (label, note and source from the form); returns
    (entries added, per-file errors). Shared with the /banks page."""
    return (
        state()
        .banks()
        .add_media(
            name,
            (((u.filename or "file")[:200], _received(u)) for u in uploads),
            label=request.form.get("label") or None,
            note=request.form.get("note") or "",
            source=request.form.get("source") or "",
            caller=actor(),
            viewer=viewer(),
        )
    )


@bp.post("/<name>/entries")
@documented(
    Operation(
        "addBankEntries",
        "Add entries: media files (hashed here) or a bank CSV",
        body={
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "array", "items": {"type": "string"}},
                        **{k: {"type": "string"} for k in ("csv", "label", "note", "source")},
                    },
                }
            },
            "text/csv": {"schema": {"type": "string"}},
        },
        answers={
            200: Answer("entries added; per-file errors listed", BankEntriesAdded),
            400: "bad CSV or label",
            404: _NO_BANK,
            415: "neither multipart nor CSV",
        },
    )
)
def add_entries(name: str) -> Response:
    """Media files as multipart ``file`` fields, or a bank CSV (``text/csv`` body or a
    multipart ``csv`` field); rows keep their own labels."""
    banks = state().banks()
    bank = banks.visible(name, viewer(), write=True)
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
    added = banks.import_csv(bank.name, source, actor())
    return jsonify({"bank": name, "added": added, "errors": []})


@bp.get("/<name>/entries.csv")
@documented(
    Operation(
        "exportBank",
        "A bank as CSV (bank, entry, label, pdq, note, source)",
        answers={200: Answer("the CSV", media_type="text/csv"), 404: _NO_BANK},
    )
)
def export(name: str) -> Response:
    return bank_csv(name)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
