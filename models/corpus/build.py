"""Build the git-ignored detector corpus from files a user obtained, checking every sha256.

    python models/corpus/build.py --sources DIR [--debs DIR] [--out models/corpus/data]

The repository holds only ``models/corpus/MANIFEST.tsv``: one row per source file (where it comes
from, at which commit or package version, its sha256, licence, label, generator family or real
source, split, and how to cut it into tiles). This script finds each file, refuses it when its
bytes do not match the recorded sha256, cuts grids into their tiles and writes:

    <out>/<split>/<label>/<family>/<sha256[:16]>[_t<k>].<ext>
    <out>/index.tsv      one row per item (tile) with its source row's fields and pixel size

Where files come from (``source`` column):

``github:owner/name``  a git repository at the recorded commit: a bare mirror at
                       ``DIR/owner+name/repo`` or ``DIR/owner+name`` (what this project's
                       collection sessions used), or a clone at ``DIR/owner/name``. Shallow clones
                       must include the recorded commit (``git fetch origin <commit>``).
``deb:package``        a Debian package extracted with ``dpkg-deb -x pkg.deb DEBS/package_version``
``pypi:package``       a wheel or sdist unpacked at ``DEBS/package-version``

Exit status: 0 when every row was built; 1 when any file was missing or mismatched (the rest is
still built, and each problem is listed); 2 for bad arguments or an unreadable manifest.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageSequence

try:  # HEIC camera samples
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - without it, HEIC rows are reported undecodable
    pass

HERE = Path(__file__).resolve().parent
COLUMNS = (
    "source",
    "version",
    "path",
    "sha256",
    "licence",
    "label",
    "family",
    "split",
    "tiles",
    "note",
)
LABELS = {"ai", "real", "face_real", "face_fake"}
SPLITS = {"train", "val", "calib", "test"}
MIN_TILE = 64
VIDEO = {".mp4", ".mov", ".webm", ".mkv", ".avi"}


@dataclass(frozen=True)
class Row:
    source: str
    version: str
    path: str
    sha256: str
    licence: str
    label: str
    family: str
    split: str
    tiles: str
    note: str


class ManifestError(Exception):
    """The manifest itself is malformed (not one of its files)."""


def read_manifest(path: Path) -> list[Row]:
    rows: list[Row] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None or tuple(header) != COLUMNS:
            raise ManifestError(f"{path}: the header must be {' '.join(COLUMNS)}")
        for n, fields in enumerate(reader, start=2):
            if len(fields) != len(COLUMNS):
                raise ManifestError(f"{path}:{n}: {len(fields)} fields, expected {len(COLUMNS)}")
            row = Row(*fields)
            if row.label not in LABELS:
                raise ManifestError(f"{path}:{n}: unknown label {row.label!r}")
            if row.split not in SPLITS:
                raise ManifestError(f"{path}:{n}: unknown split {row.split!r}")
            if len(row.sha256) != 64:
                raise ManifestError(f"{path}:{n}: sha256 must be 64 hex digits")
            if row.sha256 in seen:
                raise ManifestError(f"{path}:{n}: sha256 {row.sha256[:12]}… listed twice")
            parse_tiles(row.tiles)
            seen.add(row.sha256)
            rows.append(row)
    return rows


@dataclass(frozen=True)
class Tiling:
    rows: int
    cols: int
    gutter: int
    keep: tuple[int, ...] | None  # 1-based, row-major
    outer: int = 0


def parse_tiles(spec: str) -> Tiling:
    """``1`` | ``RxC`` | ``RxC:g<N>`` (gutters between tiles) with optional ``:o<N>`` (a border
    round the outside) and ``:keep=i,j`` (1-based, row-major)."""
    if spec == "1":
        return Tiling(1, 1, 0, None)
    parts = spec.split(":")
    try:
        r, c = (int(v) for v in parts[0].split("x"))
        gutter, keep, outer = 0, None, 0
        for p in parts[1:]:
            if p.startswith("g"):
                gutter = int(p[1:])
            elif p.startswith("o"):
                outer = int(p[1:])
            elif p.startswith("keep="):
                keep = tuple(int(v) for v in p[5:].split(","))
            else:
                raise ValueError(p)
    except ValueError as exc:
        raise ManifestError(f"bad tiles spec {spec!r}") from exc
    if r < 1 or c < 1 or (keep and not all(1 <= k <= r * c for k in keep)):
        raise ManifestError(f"bad tiles spec {spec!r}")
    return Tiling(r, c, gutter, keep, outer)


def cut(image: Image.Image, tiling: Tiling) -> list[tuple[int, Image.Image]]:
    """The tiles to keep, as (1-based index, image)."""
    if tiling.rows == tiling.cols == 1:
        return [(1, image)]
    w, h = image.size
    o = tiling.outer
    tw = (w - 2 * o - tiling.gutter * (tiling.cols - 1)) // tiling.cols
    th = (h - 2 * o - tiling.gutter * (tiling.rows - 1)) // tiling.rows
    out = []
    for i in range(tiling.rows):
        for j in range(tiling.cols):
            k = i * tiling.cols + j + 1
            if tiling.keep and k not in tiling.keep:
                continue
            x, y = o + j * (tw + tiling.gutter), o + i * (th + tiling.gutter)
            out.append((k, image.crop((x, y, x + tw, y + th))))
    return out


class Sources:
    """Finds a manifest row's bytes in the folders the user gave."""

    def __init__(self, repos: Path | None, packages: Path | None) -> None:
        self.repos = repos
        self.packages = packages
        self._gitdirs: dict[str, Path | None] = {}

    def _gitdir(self, repo: str) -> Path | None:
        if repo in self._gitdirs:
            return self._gitdirs[repo]
        found = None
        if self.repos is not None:
            owner, name = repo.split("/", 1)
            for candidate in (
                self.repos / f"{owner}+{name}" / "repo",
                self.repos / f"{owner}+{name}" / "repo" / ".git",
                self.repos / f"{owner}+{name}",
                self.repos / owner / name / ".git",
            ):
                if (candidate / "HEAD").is_file():
                    found = candidate
                    break
        self._gitdirs[repo] = found
        return found

    def read(self, row: Row) -> bytes:
        kind, _, name = row.source.partition(":")
        if kind == "github":
            gitdir = self._gitdir(name)
            if gitdir is None:
                raise FileNotFoundError(f"no clone or mirror of {name} under {self.repos}")
            proc = subprocess.run(
                ["git", f"--git-dir={gitdir}", "cat-file", "blob", f"{row.version}:{row.path}"],
                capture_output=True,
                check=False,
            )
            if proc.returncode != 0:
                raise FileNotFoundError(f"{name}@{row.version[:10]}: {row.path} not found")
            return proc.stdout
        if kind in ("deb", "pypi"):
            if self.packages is None:
                raise FileNotFoundError(f"{row.source}: give --packages")
            sep = "_" if kind == "deb" else "-"
            base = self.packages / f"{name}{sep}{row.version}"
            path = base / row.path
            if not path.is_file():
                raise FileNotFoundError(f"{path} not found")
            return path.read_bytes()
        raise FileNotFoundError(f"unknown source kind {row.source!r}")


def read_index(corpus: Path) -> list[dict[str, str]]:
    """The built corpus's ``index.tsv``: one dict per item (tile), keyed by its header."""
    lines = (corpus / "index.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]


def first_frame(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    if getattr(image, "is_animated", False):
        image = next(iter(ImageSequence.Iterator(image)))
    return image.convert("RGB")


def build(rows: list[Row], sources: Sources, out: Path) -> list[str]:
    problems: list[str] = []
    index = ["file\tsource_sha256\ttile\tlabel\tfamily\tsplit\twidth\theight\tsource\tlicence"]
    for row in rows:
        try:
            data = sources.read(row)
        except FileNotFoundError as exc:
            problems.append(f"missing: {exc}")
            continue
        actual = hashlib.sha256(data).hexdigest()
        if actual != row.sha256:
            problems.append(
                f"refused: {row.source} {row.path}: sha256 {actual[:12]}…, "
                f"manifest {row.sha256[:12]}…"
            )
            continue
        folder = out / row.split / row.label / row.family
        folder.mkdir(parents=True, exist_ok=True)
        suffix = Path(row.path).suffix.lower()
        if suffix in VIDEO:  # kept whole; the training scripts sample its frames
            name = f"{row.sha256[:16]}{suffix}"
            (folder / name).write_bytes(data)
            index.append(
                f"{(folder / name).relative_to(out)}\t{row.sha256}\t1\t{row.label}\t"
                f"{row.family}\t{row.split}\t0\t0\t{row.source}\t{row.licence}"
            )
            continue
        try:
            image = first_frame(data)
        except Exception as exc:
            problems.append(f"undecodable: {row.source} {row.path}: {exc}")
            continue
        tiling = parse_tiles(row.tiles)
        pieces = cut(image, tiling)
        for k, tile in pieces:
            if min(tile.size) < MIN_TILE:
                problems.append(f"too small: {row.path} tile {k} {tile.size}")
                continue
            if len(pieces) == 1 and tiling.rows * tiling.cols == 1:
                ext = Path(row.path).suffix.lower() or ".img"
                name = f"{row.sha256[:16]}{ext}"
                (folder / name).write_bytes(data)
            else:
                name = f"{row.sha256[:16]}_t{k}.png"
                tile.save(folder / name)
            rel = (folder / name).relative_to(out)
            index.append(
                f"{rel}\t{row.sha256}\t{k}\t{row.label}\t{row.family}\t{row.split}\t"
                f"{tile.size[0]}\t{tile.size[1]}\t{row.source}\t{row.licence}"
            )
    (out / "index.tsv").write_text("\n".join(index) + "\n", encoding="utf-8")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=HERE / "MANIFEST.tsv")
    parser.add_argument("--sources", type=Path, help="folder of git mirrors or clones")
    parser.add_argument("--packages", type=Path, help="folder of unpacked deb/PyPI packages")
    parser.add_argument("--out", type=Path, default=HERE / "data")
    args = parser.parse_args()
    try:
        rows = read_manifest(args.manifest)
    except (OSError, ManifestError) as exc:
        print(f"build: {exc}", file=sys.stderr)
        sys.exit(2)
    args.out.mkdir(parents=True, exist_ok=True)
    problems = build(rows, Sources(args.sources, args.packages), args.out)
    counts = Counter((r.split, r.label) for r in rows)
    for (split, label), n in sorted(counts.items()):
        print(f"{split:6s} {label:10s} {n:6d} files")
    for p in problems:
        print(p, file=sys.stderr)
    print(f"{len(rows) - len(problems)} of {len(rows)} rows built into {args.out}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
