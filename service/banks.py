"""Known-media banks from CSV files: what organisations exchange, usable offline.

CSV columns (header required): ``bank,entry,label,pdq`` and optionally ``note,source``.
``label`` is what the bank says the item is: ``authentic`` (e.g. an official original),
``ai_generated`` or ``manipulated`` (a known fake). ``pdq`` is the 64-hex-digit PDQ hash, as
``shingan banks add`` writes it. Every verification looks the file's hash (and, for video,
every analysed frame's hash) up in all banks; verdict rule 4 decides from the nearest match.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from provenance.hashing import NEAR_THRESHOLD, hex_to_int
from provenance.pdq_index import PdqIndex
from service.verdict import Match

LABELS = ("authentic", "ai_generated", "manipulated")
FIELDS = ("bank", "entry", "label", "pdq", "note", "source")


class BankError(Exception):
    """A bank file is missing or malformed."""


@dataclass(frozen=True)
class BankEntry:
    bank: str
    entry: str
    label: str
    pdq: str
    note: str = ""
    source: str = ""


def read_bank_csv(path: Path) -> list[BankEntry]:
    """Raises BankError naming the file and line of the first problem."""
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = {"bank", "entry", "label", "pdq"} - set(reader.fieldnames or [])
            if missing:
                raise BankError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
            entries = []
            for line, row in enumerate(reader, start=2):
                label = (row.get("label") or "").strip()
                if label not in LABELS:
                    raise BankError(f"{path}:{line}: label must be one of {', '.join(LABELS)}")
                pdq = (row.get("pdq") or "").strip().lower()
                try:
                    hex_to_int(pdq)
                except ValueError as exc:
                    raise BankError(f"{path}:{line}: {exc}") from exc
                entries.append(
                    BankEntry(
                        bank=(row.get("bank") or "").strip() or path.stem,
                        entry=(row.get("entry") or "").strip() or f"line {line}",
                        label=label,
                        pdq=pdq,
                        note=(row.get("note") or "").strip(),
                        source=(row.get("source") or "").strip(),
                    )
                )
            return entries
    except FileNotFoundError as exc:
        raise BankError(f"{path}: no such bank file") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BankError(f"{path}: cannot be read ({exc})") from exc


def write_bank_csv(path: Path, entries: Iterable[BankEntry], *, append: bool = False) -> None:
    new = not (append and path.exists() and path.stat().st_size > 0)
    with path.open("a" if append else "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        if new:
            writer.writerow(FIELDS)
        for e in entries:
            writer.writerow([e.bank, e.entry, e.label, e.pdq, e.note, e.source])


@dataclass(frozen=True)
class BankSet:
    """Every configured bank entry and one index over all their hashes."""

    entries: tuple[BankEntry, ...] = ()
    index: PdqIndex | None = None

    @classmethod
    def load(cls, paths: Sequence[str | Path]) -> BankSet:
        entries: list[BankEntry] = []
        for p in paths:
            entries.extend(read_bank_csv(Path(p).expanduser()))
        if not entries:
            return cls()
        return cls(tuple(entries), PdqIndex(e.pdq for e in entries))

    def lookup(self, pdq_hex: str, radius: int = NEAR_THRESHOLD) -> list[Match]:
        if self.index is None:
            return []
        out = []
        for position, distance in self.index.search(pdq_hex, radius):
            e = self.entries[position]
            out.append(Match(e.bank, e.entry, e.label, distance, e.note))  # type: ignore[arg-type]
        return out
