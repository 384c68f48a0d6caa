"""Known-media banks kept in the database: create, add entries (from media or a bank CSV),
export and delete, with the ownership rules. Called by ``/v1/banks``, the ``/banks`` page and
``shingan banks``."""

from __future__ import annotations

import builtins
import io
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from provenance.media import Limits, MediaError, MediaTooLarge, copy_limited
from service.app.errors import BadRequest, Conflict, Forbidden, NotFound, TooLarge
from service.banks import (
    BANK_NAME,
    LABELS,
    BankEntry,
    BankError,
    entries_from_media,
    iter_bank_csv,
    write_entries,
)
from service.store import BankRecord, Store, StoreConflict, Viewer

MAX_CSV_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Banks:
    """The banks of one store, as seen by a caller (``viewer`` None: no ownership checks, the
    single trusted user of a keyless loopback service)."""

    store: Store
    limits: Limits
    spool_dir: Path

    def visible(self, name: str, viewer: Viewer | None, *, write: bool = False) -> BankRecord:
        """The bank if the caller may see it; with ``write``, only if the caller may change it.

        Raises:
            NotFound: no such bank, or not the caller's to see.
            Forbidden: ``write`` on a bank shared read-only.
        """
        bank = self.store.banks.get_bank(name, viewer) if BANK_NAME.match(name) else None
        if bank is None:
            raise NotFound("no bank with that name")
        if write and not bank.writable:
            raise Forbidden(
                "this bank is shared read-only; only its owner or an admin key may change it"
            )
        return bank

    def create(self, fields: Mapping[str, Any], caller: str, viewer: Viewer | None) -> str:
        """Check and create a bank from request fields (API JSON or the page's form); its name.

        The bank belongs to the caller. With keys in use it is private unless an admin key asks
        for ``shared`` (used by every caller's verifications, read-only to them): a shared bank
        decides other people's verdicts, so only admins may make one. Without keys (one trusted
        user) every bank is shared.

        Raises:
            BadRequest: a bad name or label. Forbidden: ``shared`` asked by a non-admin.
            Conflict: the name is in use.
        """
        name = str(fields.get("name") or "").strip()
        label = str(fields.get("label") or "").strip()
        asked = str(fields.get("shared", "")).strip().lower() in ("1", "true", "yes", "on")
        if viewer is not None and asked and not viewer.admin:
            raise Forbidden("only an admin key may create a shared bank")
        self.create_bank(
            name,
            label,
            note=str(fields.get("note") or ""),
            source=str(fields.get("source") or ""),
            owner=caller,
            shared=viewer is None or asked,
            caller=caller,
        )
        return name

    def create_bank(
        self,
        name: str,
        label: str,
        *,
        note: str = "",
        source: str = "",
        owner: str | None,
        shared: bool,
        caller: str,
    ) -> None:
        """Create a checked bank: the API's and the page's (owned by the caller) and the
        operator's from ``shingan banks`` (``owner`` None).

        Raises:
            BadRequest: a bad name or label. Conflict: the name is in use.
        """
        if not BANK_NAME.match(name):
            raise BadRequest("name: 1-64 letters, digits, '.', '_' or '-', starting alphanumeric")
        check_label(label)
        try:
            self.store.banks.create_bank(
                name, label, note[:2000], source[:2000], owner=owner, shared=shared
            )
        except StoreConflict as exc:
            raise Conflict(str(exc)) from exc
        self.store.reports.audit_event(caller, "bank_created", name)

    def list(self, viewer: Viewer | None) -> builtins.list[BankRecord]:
        """The banks ``viewer`` may see (None: all), with their entry counts."""
        return self.store.banks.list_banks(viewer)

    def delete(self, name: str, caller: str, viewer: Viewer | None) -> None:
        self.visible(name, viewer, write=True)
        self.store.banks.delete_bank(name)
        self.store.reports.audit_event(caller, "bank_deleted", name)

    def media_entries(
        self, path: Path, filename: str, bank: str, label: str, note: str = "", source: str = ""
    ) -> builtins.list[BankEntry]:
        """The entries of one media file: its PDQ hash, or a video's sampled frames.

        Raises:
            provenance.media.MediaError: the file cannot be hashed.
        """
        return entries_from_media(path, filename, bank, label, self.limits, note, source)

    def add_media(
        self,
        name: str,
        files: Iterable[tuple[str, AbstractContextManager[Path]]],
        *,
        label: str | None,
        note: str,
        source: str,
        caller: str,
        viewer: Viewer | None,
    ) -> tuple[int, builtins.list[dict[str, str]]]:
        """Hash media files into the bank: ``files`` gives each file's name and a context that
        provides its path for as long as it is open (an upload received to a temporary file).
        ``label`` defaults to the bank's. Returns (entries added, per-file errors).

        Raises:
            NotFound, Forbidden: as :meth:`visible` with ``write``. BadRequest: a bad label.
        """
        bank = self.visible(name, viewer, write=True)
        label = label or bank.label
        check_label(label)
        entries: builtins.list[BankEntry] = []
        errors: builtins.list[dict[str, str]] = []
        for filename, opened in files:
            try:
                with opened as path:
                    entries.extend(
                        self.media_entries(path, filename, name, label, note[:2000], source[:2000])
                    )
            except MediaError as exc:
                errors.append({"file": filename, "code": exc.code, "message": exc.message})
        return self.add(name, entries, caller), errors

    def add(self, bank: str, entries: Iterable[BankEntry], caller: str) -> int:
        """Add entries already checked; the number added."""
        added = self.store.banks.add_bank_entries(bank, entries)
        self.store.reports.audit_event(caller, "bank_entries_added", f"{bank}: {added}")
        return added

    def import_csv(self, bank: str, source: IO[bytes], caller: str) -> int:
        """Import a bank CSV into ``bank`` in bounded memory: the upload is spooled to a file,
        checked row by row as a whole first (nothing is added if any row is bad), then
        inserted in chunks in one transaction.

        Raises:
            TooLarge: over 256 MiB. BadRequest (code ``bad_csv``): not UTF-8, not a bank CSV.
        """
        with tempfile.TemporaryFile(dir=self.spool_dir, prefix="bank-csv-") as spool:
            try:
                copy_limited(source, spool, MAX_CSV_BYTES)
            except MediaTooLarge as exc:
                raise TooLarge("the CSV is over 256 MiB") from exc

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
                return self.import_entries(bank, rows(), caller)
            except BankError as exc:
                message = str(exc)
                if "codec can't decode" in message:
                    raise BadRequest("the CSV is not UTF-8", code="bad_csv") from exc
                raise BadRequest(message, code="bad_csv") from exc

    def import_entries(self, bank: str, entries: Iterable[BankEntry], caller: str) -> int:
        """Add entries read from a bank CSV (audited as an import); the number added."""
        added = self.store.banks.add_bank_entries(bank, entries)
        self.store.reports.audit_event(caller, "bank_imported", f"{bank}: {added}")
        return added

    def entries(self, name: str) -> Iterator[BankEntry]:
        """The bank's entries, in the order they were added."""
        for e in self.store.banks.bank_entries(bank=name):
            yield BankEntry.of(e)

    def export_lines(self, name: str) -> Iterator[str]:
        """The bank as CSV, in pieces of about 64 KiB."""
        buf = io.StringIO()
        header = True
        for entry in self.entries(name):
            write_entries(buf, [entry], header=header)
            header = False
            if buf.tell() > 64 * 1024:
                yield buf.getvalue()
                buf = io.StringIO()
        if header:
            write_entries(buf, [], header=True)
        yield buf.getvalue()


def check_label(label: str) -> None:
    """Raises: BadRequest when ``label`` is not a bank label."""
    if label not in LABELS:
        raise BadRequest(f"label must be one of {', '.join(LABELS)}")
