"""Run every fuzz target and record what was done.

    .venv/bin/python fuzz/campaign.py --runs 100000 [--record docs/measurements/fuzzing.json]
    .venv/bin/python fuzz/campaign.py --seconds 15 --fresh      # the short run CI makes

Each target runs in its own process (``fuzz/run.py``) from its corpus folder (``--fresh``: a
temporary one started from the seeds). Per target it reports executions, time, executions per
second, inputs added to the corpus, the corpus's size, peak memory and the outcome; with
``--record``, the same as JSON. Exit status 1 if any target found something (its input is in
``fuzz/crashes/``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fuzz.targets import TARGETS  # noqa: E402

_STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.MULTILINE)
_ARTIFACT = re.compile(r"Test unit written to (\S+)")


def run_target(name: str, corpus: Path, runs: int | None, seconds: int | None) -> dict[str, Any]:
    argv = [sys.executable, str(ROOT / "fuzz" / "run.py"), name, "--corpus", str(corpus)]
    argv += ["--runs", str(runs)] if runs else ["--seconds", str(seconds)]
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    stats = {k: int(v) for k, v in _STAT.findall(proc.stderr)}
    files = [p for p in corpus.iterdir() if p.is_file()]
    artifact = _ARTIFACT.search(proc.stderr)
    return {
        "target": name,
        "executions": stats.get("number_of_executed_units", 0),
        "seconds": round(elapsed, 1),
        "exec_per_s": stats.get("average_exec_per_sec", 0),
        "new_units": stats.get("new_units_added", 0),
        "corpus_files": len(files),
        "corpus_bytes": sum(p.stat().st_size for p in files),
        "peak_rss_mb": stats.get("peak_rss_mb", 0),
        "slowest_unit_s": stats.get("slowest_unit_time_sec", 0),
        "exit_code": proc.returncode,
        "finding": artifact.group(1) if artifact else None,
        "tail": proc.stderr.strip().splitlines()[-12:] if proc.returncode else [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    limit = parser.add_mutually_exclusive_group(required=True)
    limit.add_argument("--runs", type=int)
    limit.add_argument("--seconds", type=int)
    parser.add_argument("--only", action="append", choices=sorted(TARGETS))
    parser.add_argument("--fresh", action="store_true", help="start from the seeds alone")
    parser.add_argument("--record", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="shingan-fuzz-corpus-") as tmp:
        for name in args.only or list(TARGETS):
            corpus = Path(tmp) / name if args.fresh else ROOT / "fuzz" / "corpus" / name
            corpus.mkdir(parents=True, exist_ok=True)
            r = run_target(name, corpus, args.runs, args.seconds)
            results.append(r)
            outcome = "clean" if r["exit_code"] == 0 else f"FINDING {r['finding']}"
            print(
                f"{name:9s} {r['executions']:>9,d} runs in {r['seconds']:7.1f} s "
                f"({r['exec_per_s']:>6,d}/s), corpus {r['corpus_files']:5d} files "
                f"{r['corpus_bytes'] / 1024:8.0f} KiB, peak {r['peak_rss_mb']:5d} MB: {outcome}",
                flush=True,
            )
            for line in r["tail"]:
                print(f"    {line}")
    if args.record:
        import atheris

        args.record.write_text(
            json.dumps(
                {
                    "date": dt.date.today().isoformat(),
                    "command": " ".join(sys.argv),
                    "atheris": getattr(atheris, "__version__", "unknown"),
                    "targets": results,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    if any(r["exit_code"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
