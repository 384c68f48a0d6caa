"""How long the ``shingan`` command takes to start: ``--help``, ``config`` and ``verify``.

    .venv/bin/python benchmarks/bench_startup.py [--repeat 7] [--file samples/unsigned.jpg]
        [--baseline DIR] [--json]

Each case runs ``--repeat`` times (after one unmeasured warm-up run), every run in a fresh
process, the cases taking turns so that a burst of load on the shared machine falls on all of
them alike; the medians are printed (and the fastest and slowest run). ``--baseline DIR`` runs
the same cases from another checkout in the same rounds, for a before/after comparison on a
noisy machine (``git archive OLD | tar -x -C DIR`` makes one).

The cases:

* ``help``       ``shingan --help``;
* ``config``     ``shingan config`` (an empty data folder);
* ``verify``     ``shingan verify --json FILE`` with an empty data folder (no database);
* ``verify+db``  the same with a data folder holding a database (migrated to the latest schema,
                 one bank of one entry, made with ``shingan banks create`` and ``banks add``).

Two times per run:

* ``wall``     from just before the process is spawned until it has exited;
* ``start-up`` (``verify`` only) from just before the process is spawned until
               ``service.pipeline.analyze`` is first called: interpreter start-up, imports,
               configuration, trust, detector sessions, the database's check; everything before
               analysis begins.

How start-up is taken: the command runs as ``python -c CHILD ARGS``, where ``CHILD`` (below)
installs an import hook that wraps ``service.pipeline.analyze`` once that module has loaded,
then calls ``service.cli.main`` as the ``shingan`` console script does. The wrapper writes
``time.monotonic()`` on its first call; on Linux that clock (CLOCK_MONOTONIC) is the same in
every process, so the parent subtracts the time it read before spawning. The hook changes no
code and costs one Python-level lookup per import; the product carries no timing switch. The
child also notes which heavy libraries (numpy, cv2, onnxruntime, c2pa, PIL, pydantic, flask,
sqlalchemy, alembic) were loaded when analysis began, or at exit for ``--help`` and ``config``.

Children run from this checkout (``cwd`` and ``PYTHONPATH``), with every ``SHINGAN_*`` variable
removed from their environment but ``SHINGAN_DATA_DIR``, which points at a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

HEAVY = (
    "numpy",
    "cv2",
    "onnxruntime",
    "c2pa",
    "PIL",
    "pydantic",
    "service.contract",
    "flask",
    "sqlalchemy",
    "alembic",
)

#: The child: ``python -c CHILD TRACE_FILE HEAVY,MODULES shingan-arguments...``.
CHILD = """
import atexit, importlib.util, json, sys, time
trace_file = sys.argv.pop(1)
HEAVY = sys.argv.pop(1).split(",")
trace = {"analyze_at": None}

def heavy():
    return [m for m in HEAVY if m in sys.modules]

class Hook:
    def find_spec(self, name, path=None, target=None):
        if name != "service.pipeline":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            analyze = module.analyze

            def traced(*args, **kwargs):
                if trace["analyze_at"] is None:
                    trace["analyze_at"] = time.monotonic()
                    trace["heavy_at_analyze"] = heavy()
                return analyze(*args, **kwargs)

            module.analyze = traced

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, Hook())

@atexit.register
def _write():
    trace["heavy_at_exit"] = heavy()
    with open(trace_file, "w") as fh:
        json.dump(trace, fh)

from service.cli import main
sys.argv[0] = "shingan"
sys.exit(main())
"""


def run_once(root: Path, args: list[str], data_dir: Path, trace_file: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-c", CHILD, str(trace_file), ",".join(HEAVY), *args]
    env = child_env(root, data_dir)
    start = time.monotonic()
    done = subprocess.run(cmd, env=env, cwd=root, capture_output=True, check=False)
    end = time.monotonic()
    if done.returncode != 0:
        raise SystemExit(f"shingan {' '.join(args)} failed:\n{done.stderr.decode()}")
    trace = json.loads(trace_file.read_text())
    analyze_at = trace["analyze_at"]
    return {
        "wall_s": end - start,
        "startup_s": analyze_at - start if analyze_at is not None else None,
        "heavy_at_analyze": trace.get("heavy_at_analyze"),
        "heavy_at_exit": trace["heavy_at_exit"],
    }


def child_env(root: Path, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHINGAN_")}
    env["SHINGAN_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    return env


def make_database(root: Path, data_dir: Path, sample: Path) -> None:
    """A migrated database with one bank of one entry, made by the checkout's CLI itself."""
    env = child_env(root, data_dir)
    base = [sys.executable, "-m", "service.cli", "banks"]
    for extra in (
        ["create", "bench", "--label", "authentic"],
        ["add", "--bank", "bench", str(sample)],
    ):
        subprocess.run([*base, *extra], env=env, cwd=root, check=True, capture_output=True)
    assert (data_dir / "shingan.db").is_file()


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    walls = [r["wall_s"] for r in runs]
    out: dict[str, Any] = {
        "runs": len(runs),
        "wall_median_s": round(statistics.median(walls), 3),
        "wall_min_s": round(min(walls), 3),
        "wall_max_s": round(max(walls), 3),
        "startup_median_s": None,
        "startup_min_s": None,
        "startup_max_s": None,
    }
    starts = [r["startup_s"] for r in runs if r["startup_s"] is not None]
    if starts:
        out["startup_median_s"] = round(statistics.median(starts), 3)
        out["startup_min_s"] = round(min(starts), 3)
        out["startup_max_s"] = round(max(starts), 3)
    out["heavy_at_analyze"] = runs[-1]["heavy_at_analyze"]
    out["heavy_at_exit"] = runs[-1]["heavy_at_exit"]
    return out


def _shown(path: Path) -> str:
    """A path as the command line would give it from the checkout."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def measure(roots: list[Path], sample: Path, repeat: int) -> list[dict[str, Any]]:
    """Every case for every checkout in ``roots``, run by run in turn; results per checkout."""
    with tempfile.TemporaryDirectory() as tmp:
        verify = ["verify", str(sample), "--json"]
        cases: list[tuple[int, str, list[str], Path]] = []
        for i, root in enumerate(roots):
            empty, with_db = Path(tmp, f"{i}-empty"), Path(tmp, f"{i}-with-db")
            empty.mkdir()
            with_db.mkdir()
            make_database(root, with_db, sample)
            cases += [
                (i, "help", ["--help"], empty),
                (i, "config", ["config"], empty),
                (i, "verify", verify, empty),
                (i, "verify+db", verify, with_db),
            ]
        trace_file = Path(tmp, "trace.json")
        runs: dict[tuple[int, str], list[dict[str, Any]]] = {(i, n): [] for i, n, _, _ in cases}
        for round_ in range(repeat + 1):
            for i, name, argv, data_dir in cases:
                result = run_once(roots[i], argv, data_dir, trace_file)
                if round_:  # the first round warms the file cache and is not counted
                    runs[(i, name)].append(result)
        for i in range(len(roots)):
            empty = Path(tmp, f"{i}-empty")
            assert not (empty / "shingan.db").exists(), "a one-off verify created a database"
    shown = {str(sample): _shown(sample)}
    return [
        {
            "root": str(root),
            "cases": {
                name: {
                    "command": " ".join(shown.get(a, a) for a in argv),
                    **summarise(runs[(j, name)]),
                }
                for j, name, argv, _ in cases
                if j == i
            },
        }
        for i, root in enumerate(roots)
    ]


def print_table(title: str, cases: dict[str, dict[str, Any]]) -> None:
    print(title)
    print(
        f"  {'case':10s} {'wall s':>7s} {'(min-max)':>11s} {'start-up s':>11s} {'(min-max)':>11s}"
        "  heavy modules loaded (at analysis, else at exit)"
    )
    for name, r in cases.items():
        spread = f"{r['wall_min_s']:.2f}-{r['wall_max_s']:.2f}"
        if r["startup_median_s"] is not None:
            startup = f"{r['startup_median_s']:11.3f}"
            sspread = f"{r['startup_min_s']:.2f}-{r['startup_max_s']:.2f}"
            loaded = r["heavy_at_analyze"]
        else:
            startup, sspread, loaded = f"{'-':>11s}", "", r["heavy_at_exit"]
        print(
            f"  {name:10s} {r['wall_median_s']:7.3f} {spread:>11s} {startup} {sspread:>11s}  "
            f"{', '.join(loaded) or 'none'}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="measured runs per case")
    parser.add_argument("--file", type=Path, default=ROOT / "samples" / "unsigned.jpg")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (e.g. an export of an older commit) measured in the same rounds",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    roots = [ROOT] + ([args.baseline.resolve()] if args.baseline else [])
    results = measure(roots, args.file.resolve(), args.repeat)
    python = sys.version.split()[0]
    if args.json:
        out: dict[str, Any] = {"python": python, "repeat": args.repeat, **results[0]}
        if args.baseline:
            out["baseline"] = results[1]
        print(json.dumps(out, indent=2))
        return 0
    for result in results:
        print_table(result["root"], result["cases"])
    print(f"(medians of {args.repeat} runs each, fresh processes; python {python})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
