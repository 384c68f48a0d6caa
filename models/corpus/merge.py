"""Merge collectors' manifest fragments into ``MANIFEST.tsv``, assigning splits from
``splits.toml``.

    python models/corpus/merge.py FRAGMENT.tsv ... [--out models/corpus/MANIFEST.tsv]

Fragments have the manifest's columns without ``split``. Rows whose sha256 was already seen
are dropped (the first fragment wins). Split patterns are shell-style (``camera-*``).
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import sys
import tomllib
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build import COLUMNS, read_manifest  # noqa: E402

FRAGMENT_COLUMNS = tuple(c for c in COLUMNS if c != "split")


def split_of(rules: dict[str, dict[str, list[str]]], label: str, family: str) -> str:
    for split, patterns in rules.get(label, {}).items():
        if any(fnmatch.fnmatchcase(family, p) for p in patterns):
            return split
    return "train"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fragments", nargs="+", type=Path)
    parser.add_argument("--splits", type=Path, default=HERE / "splits.toml")
    parser.add_argument("--out", type=Path, default=HERE / "MANIFEST.tsv")
    args = parser.parse_args()
    rules = tomllib.loads(args.splits.read_text(encoding="utf-8"))
    seen: set[str] = set()
    out = ["\t".join(COLUMNS)]
    dropped = 0
    for fragment in args.fragments:
        with fragment.open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = tuple(next(reader))
            if header != FRAGMENT_COLUMNS:
                sys.exit(f"merge: {fragment}: header {header} is not {FRAGMENT_COLUMNS}")
            for fields in reader:
                row = dict(zip(FRAGMENT_COLUMNS, fields, strict=True))
                if row["sha256"] in seen:
                    dropped += 1
                    continue
                seen.add(row["sha256"])
                row["split"] = split_of(rules, row["label"], row["family"])
                out.append("\t".join(row[c].replace("\t", " ") for c in COLUMNS))
    args.out.write_text("\n".join(out) + "\n", encoding="utf-8")
    rows = read_manifest(args.out)
    counts = Counter((r.label, r.split) for r in rows)
    for key, n in sorted(counts.items()):
        print(f"{key[0]:10s} {key[1]:6s} {n:6d}")
    print(f"{len(rows)} rows; {dropped} duplicates dropped")


if __name__ == "__main__":
    main()
