"""Known-media banks from CSV files: what organisations exchange, usable offline.

CSV columns (header required): ``bank,entry,label,pdq`` and optionally ``note,source``.
``label`` is what the bank says the item is: ``authentic`` (e.g. an official original),
``ai_generated`` or ``manipulated`` (a known fake). ``pdq`` is the 64-hex-digit PDQ hash, as
``shingan banks add`` writes it. Every verification looks the file's hash (and, for video,
every analysed frame's hash) up in all banks; verdict rule 4 decides from the nearest match.
"""

from __future__ import annotations

import csv
import logging
import re
import threading
from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from provenance import hashing
from provenance.errors import ShinganError
from provenance.hashing import NEAR_THRESHOLD, hex_to_int
from provenance.media import Limits, decode_rgb, open_media
from provenance.pdq_index import PdqIndex
from service.rules import BANK_LABELS, Label

if TYPE_CHECKING:
    from collections.abc import Iterator

log = logging.getLogger(__name__)

LABELS = BANK_LABELS
FIELDS = ("bank", "entry", "label", "pdq", "note", "source")


@dataclass(frozen=True)
class Match:
    """A known-media bank entry close to the file (rule 4)."""

    bank: str
    entry: str
    label: Label  # what the bank says the entry is: authentic, ai_generated or manipulated
    distance: int  # PDQ Hamming distance (0-256)
    note: str = ""


class BankError(ShinganError):
    """A bank file is missing or malformed."""

    code = "bad_bank"


class StoredEntry(Protocol):
    """A bank entry row as the database gives it (``service.store.BankEntryRecord``, or
    ``service.banks_sqlite.BankEntryRow``)."""

    @property
    def id(self) -> int: ...
    @property
    def bank(self) -> str: ...
    @property
    def entry(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def pdq(self) -> str: ...
    @property
    def note(self) -> str: ...
    @property
    def source(self) -> str: ...


class BankSource(Protocol):
    """The reads :class:`LiveBanks` makes of the database: ``service.store.BankRepository``,
    or ``service.banks_sqlite.SqliteBanks`` for a one-off command."""

    def banks_state(self) -> tuple[int, int]: ...

    def bank_entries(self, bank: str | None = None, after_id: int = 0) -> Iterator[StoredEntry]: ...

    def usable_banks(self, actor: str) -> frozenset[str]: ...


@dataclass(frozen=True)
class BankEntry:
    bank: str
    entry: str
    label: str
    pdq: str
    note: str = ""
    source: str = ""

    @classmethod
    def of(cls, r: StoredEntry) -> BankEntry:
        """The entry of a row read from the store."""
        return cls(r.bank, r.entry, r.label, r.pdq, r.note, r.source)


def iter_bank_csv(fh: IO[str], name: str, default_bank: str = "") -> Iterator[BankEntry]:
    """Entries of a bank CSV, one at a time (a large import is never held in memory).

    Raises:
        BankError: naming ``name`` and the line of the first problem, when it is reached.
    """
    try:
        reader = csv.DictReader(_bounded_lines(fh, name))
        missing = {"entry", "label", "pdq"} - set(reader.fieldnames or [])
        if missing:
            raise BankError(f"{name}: missing column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            label = (row.get("label") or "").strip()
            if label not in LABELS:
                raise BankError(f"{name}:{line}: label must be one of {', '.join(LABELS)}")
            pdq = (row.get("pdq") or "").strip().lower()
            try:
                hex_to_int(pdq)
            except ValueError as exc:
                raise BankError(f"{name}:{line}: {exc}") from exc
            yield BankEntry(
                bank=(row.get("bank") or "").strip() or default_bank,
                entry=(row.get("entry") or "").strip()[:255] or f"line {line}",
                label=label,
                pdq=pdq,
                note=(row.get("note") or "").strip()[:2000],
                source=(row.get("source") or "").strip()[:2000],
            )
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BankError(f"{name}: cannot be read ({exc})") from exc


#: A bank CSV row is a few hundred characters; a longer line is not a bank file.
MAX_LINE = 64 * 1024


def _bounded_lines(fh: IO[str], name: str) -> Iterator[str]:
    """Lines of ``fh``, refusing one longer than :data:`MAX_LINE` before it is read whole."""
    number = 0
    while line := fh.readline(MAX_LINE + 1):
        number += 1
        if len(line) > MAX_LINE and not line.endswith("\n"):
            raise BankError(f"{name}:{number}: line longer than {MAX_LINE} characters")
        yield line


def parse_bank_csv(fh: IO[str], name: str, default_bank: str = "") -> list[BankEntry]:
    """Entries of a bank CSV. Raises BankError naming ``name`` and the line of the problem."""
    return list(iter_bank_csv(fh, name, default_bank))


def read_bank_csv(path: Path) -> list[BankEntry]:
    """Raises BankError naming the file and line of the first problem."""
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            return parse_bank_csv(fh, str(path), default_bank=path.stem)
    except FileNotFoundError as exc:
        raise BankError(f"{path}: no such bank file") from exc
    except OSError as exc:
        raise BankError(f"{path}: cannot be read ({exc})") from exc


def entries_from_media(
    path: Path, name: str, bank: str, label: str, limits: Limits, note: str = "", source: str = ""
) -> list[BankEntry]:
    """Bank entries for one file: its PDQ hash, or one per sampled frame of a video.

    Raises:
        provenance.media.MediaError: the file cannot be analysed.
    """
    media = open_media(path, limits)
    if media.kind == "video":
        return [
            BankEntry(bank, f"{name}#t={frame.time_s}", label, frame.hash.hex, note, source)
            for frame in hashing.video_frame_hashes(media.path)
        ]
    h = hashing.pdq(decode_rgb(media, limits))
    return [BankEntry(bank, name, label, h.hex, note, source)]


BANK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def write_bank_csv(path: Path, entries: Iterable[BankEntry], *, append: bool = False) -> None:
    new = not (append and path.exists() and path.stat().st_size > 0)
    with path.open("a" if append else "w", encoding="utf-8", newline="") as fh:
        write_entries(fh, entries, header=new)


def write_entries(fh: IO[str], entries: Iterable[BankEntry], *, header: bool = True) -> None:
    writer = csv.writer(fh)
    if header:
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

    @property
    def active(self) -> bool:
        return self.index is not None

    def for_actor(self, actor: str) -> BankLookup:
        """Bank files are the operator's: every caller uses them."""
        return self

    def lookup(self, pdq_hex: str, radius: int = NEAR_THRESHOLD) -> list[Match]:
        if self.index is None:
            return []
        out = []
        for position, distance in self.index.search(pdq_hex, radius):
            e = self.entries[position]
            out.append(Match(e.bank, e.entry, e.label, distance, e.note))  # type: ignore[arg-type]
        return out


class BankLookup(Protocol):
    """What the pipeline needs of banks: whether any are configured, and nearest entries."""

    @property
    def active(self) -> bool: ...

    def lookup(self, pdq_hex: str, radius: int = NEAR_THRESHOLD) -> list[Match]: ...

    def for_actor(self, actor: str) -> BankLookup:
        """The banks looked up for this caller's verifications."""
        ...


#: Entries added since the last full index build are searched in a second, small index;
#: past this many the main index is rebuilt.
DELTA_LIMIT = 20_000


class LiveBanks:
    """Bank CSV files plus the banks in the store, kept current across processes.

    Each lookup asks the store for its bank revision (one primary-key read). New entries are
    appended to a small delta index; a deleted bank (a new epoch) or a large delta rebuilds the
    main index. So an entry added through the API or CLI is used by the next verification in
    every process sharing the database.
    """

    def __init__(self, files: BankLookup, store: BankSource) -> None:
        self.files = files
        self.store = store
        self._lock = threading.Lock()
        self._state: tuple[int, int] | None = None
        self._main: BankSet = BankSet()
        self._delta: BankSet = BankSet()
        self._last_id = 0

    def _refresh(self) -> None:
        state = self.store.banks_state()
        with self._lock:
            if state == self._state:
                return
            rebuild = self._state is None or state[1] != self._state[1]
            new = list(self.store.bank_entries(after_id=0 if rebuild else self._last_id))
            if new:
                self._last_id = max(self._last_id if not rebuild else 0, new[-1].id)
            elif rebuild:
                self._last_id = 0
            entries = [BankEntry.of(e) for e in new]
            if rebuild:
                self._main = BankSet(
                    tuple(entries), PdqIndex(e.pdq for e in entries) if entries else None
                )
                self._delta = BankSet()
            else:
                combined = (*self._delta.entries, *entries)
                if len(combined) > DELTA_LIMIT:
                    everything = (*self._main.entries, *combined)
                    self._main = BankSet(everything, PdqIndex(e.pdq for e in everything))
                    self._delta = BankSet()
                elif combined:
                    self._delta = BankSet(combined, PdqIndex(e.pdq for e in combined))
            self._state = state

    def warm_up(self) -> threading.Thread:
        """Load and index the banks in the background, so that with a million entries (tens of
        seconds) the first verification after a start waits less, or not at all."""

        def run() -> None:
            try:
                self._refresh()
            except Exception:  # the database is not reachable yet: the first lookup retries
                log.warning("known-media banks could not be loaded in advance", exc_info=True)

        thread = threading.Thread(target=run, name="shingan-banks-warm-up", daemon=True)
        thread.start()
        return thread

    @property
    def active(self) -> bool:
        self._refresh()
        return self.files.active or self._main.active or self._delta.active

    def lookup(
        self, pdq_hex: str, radius: int = NEAR_THRESHOLD, banks: Container[str] | None = None
    ) -> list[Match]:
        """Nearest entries in the bank files and in the store's banks (only those named in
        ``banks``, when given)."""
        self._refresh()
        stored = [*self._main.lookup(pdq_hex, radius), *self._delta.lookup(pdq_hex, radius)]
        if banks is not None:
            stored = [m for m in stored if m.bank in banks]
        found = [*self.files.lookup(pdq_hex, radius), *stored]
        return sorted(found, key=lambda m: m.distance)

    def for_actor(self, actor: str) -> BankLookup:
        """A caller with an API key (``key:<name>``) uses the shared banks and its own; without
        keys (one trusted user on loopback) every bank is used."""
        if not actor.startswith("key:"):
            return self
        return _ScopedBanks(self, self.store.usable_banks(actor))


class _ScopedBanks:
    def __init__(self, live: LiveBanks, names: frozenset[str]) -> None:
        self.live, self.names = live, names

    @property
    def active(self) -> bool:
        return self.live.files.active or bool(self.names)

    def lookup(self, pdq_hex: str, radius: int = NEAR_THRESHOLD) -> list[Match]:
        return self.live.lookup(pdq_hex, radius, self.names)

    def for_actor(self, actor: str) -> BankLookup:
        return self.live.for_actor(actor)
