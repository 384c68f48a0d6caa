"""Reports before and after a change: snapshot every sample and fixture, then compare.

    .venv/bin/python benchmarks/compare_reports.py snapshot before.jsonl
    ... change the code ...
    .venv/bin/python benchmarks/compare_reports.py snapshot after.jsonl
    .venv/bin/python benchmarks/compare_reports.py diff before.jsonl after.jsonl [--tolerance 0.01]

A refactoring is meant to leave every report as it was. ``snapshot`` analyses each file of
``samples/`` and ``../shared/fixtures`` (recursively; files that are not media give their error
code instead of a report) with the default configuration, and writes one JSON line per file with
what varies between runs removed: the report id, its creation time and every ``*_ms`` timing.
``diff`` lists every field that differs, by file and JSON path, and exits 1 when any does. Scores
may move by ``--tolerance`` (default 0: identical) where a change is documented to move them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VOLATILE = {"id", "created_at", "report_id", "url"}


def scrub(value: Any) -> Any:
    """``value`` without the fields that change from run to run."""
    if isinstance(value, dict):
        return {
            k: scrub(v)
            for k, v in value.items()
            if k not in VOLATILE and not k.endswith("_ms") and k != "timings"
        }
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def files(roots: list[Path]) -> list[Path]:
    out = []
    for root in roots:
        if root.is_file():
            out.append(root)
        elif root.is_dir():
            out += sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".py")
    return out


def display(path: Path) -> str:
    """``path`` relative to the repository (``../shared/...`` beside it), for stable names."""
    full = path.resolve()
    if full.is_relative_to(ROOT):
        return str(full.relative_to(ROOT))
    if full.is_relative_to(ROOT.parent):
        return "../" + str(full.relative_to(ROOT.parent))
    return str(full)


def snapshot(out: Path, roots: list[Path]) -> int:
    from detectors.registry import DetectorSet, Registry
    from provenance.media import MediaError
    from service.pipeline import AnalyzeOptions, analyze

    options = AnalyzeOptions(detectors=DetectorSet.load(Registry()))
    todo = files(roots)
    with out.open("w", encoding="utf-8") as fh:
        for n, path in enumerate(todo, 1):
            name = display(path)
            try:
                record: dict[str, Any] = {
                    "file": name,
                    "report": scrub(analyze(path, options).to_dict()),
                }
            except MediaError as exc:
                record = {"file": name, "error": getattr(exc, "code", type(exc).__name__)}
            fh.write(json.dumps(record, sort_keys=True) + "\n")
            if n % 50 == 0 or n == len(todo):
                print(f"{n}/{len(todo)}", file=sys.stderr, flush=True)
    return 0


def differences(a: Any, b: Any, path: str, tolerance: float) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: {'added' if k not in a else 'removed'}")
            else:
                out += differences(a[k], b[k], f"{path}.{k}", tolerance)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items -> {len(b)}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}[{i}]", tolerance)
        ]
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return [] if abs(a - b) <= tolerance else [f"{path}: {a} -> {b}"]
    return [] if a == b else [f"{path}: {a!r} -> {b!r}"]


def diff(before: Path, after: Path, tolerance: float) -> int:
    def read(p: Path) -> dict[str, Any]:
        return {r["file"]: r for r in map(json.loads, p.read_text(encoding="utf-8").splitlines())}

    a, b = read(before), read(after)
    problems = [f"{f}: only in {before.name}" for f in sorted(set(a) - set(b))]
    problems += [f"{f}: only in {after.name}" for f in sorted(set(b) - set(a))]
    for f in sorted(set(a) & set(b)):
        problems += [f"{f}: {d}" for d in differences(a[f], b[f], "", tolerance)]
    for line in problems:
        print(line)
    print(f"{len(set(a) & set(b))} files compared, {len(problems)} differences", file=sys.stderr)
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    snap = sub.add_parser("snapshot")
    snap.add_argument("out", type=Path)
    snap.add_argument(
        "roots",
        type=Path,
        nargs="*",
        default=[ROOT / "samples", ROOT.parent / "shared" / "fixtures"],
    )
    d = sub.add_parser("diff")
    d.add_argument("before", type=Path)
    d.add_argument("after", type=Path)
    d.add_argument("--tolerance", type=float, default=0.0)
    args = parser.parse_args()
    if args.step == "snapshot":
        return snapshot(args.out, args.roots)
    return diff(args.before, args.after, args.tolerance)


if __name__ == "__main__":
    sys.exit(main())
