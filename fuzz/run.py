"""Run one fuzz target under atheris (libFuzzer, coverage-guided on Shingan's Python code).

    .venv/bin/python fuzz/run.py TARGET [--runs N | --seconds S] [--corpus DIR]

The corpus folder (default ``fuzz/corpus/TARGET``, git-ignored) starts from the target's seeds
and keeps every input that reached new code. A crash (an exception the target does not promise)
or an input running over 10 s stops the run with its input saved as
``fuzz/crashes/TARGET-crash-<sha1>``; reproduce it with ``fuzz/run.py TARGET --replay FILE``,
then make it a regression test. Exit status: 0 when nothing was found.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from fuzz import targets as fuzz_targets

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=sorted(fuzz_targets.TARGETS))
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument("--runs", type=int, help="stop after this many executions")
    limit.add_argument("--seconds", type=int, help="stop after this long")
    parser.add_argument("--corpus", type=Path, help="corpus folder (default fuzz/corpus/TARGET)")
    parser.add_argument("--replay", type=Path, help="run one saved input and exit")
    args = parser.parse_args()

    run = fuzz_targets.TARGETS[args.target]
    if args.replay:
        run(args.replay.read_bytes())
        print(f"{args.replay}: no finding")
        return

    import atheris

    with atheris.instrument_imports(include=["provenance", "service", "detectors", "fuzz"]):
        import service.archive
        import service.banks
        import service.config  # noqa: F401 - imported to be instrumented

    corpus = args.corpus or ROOT / "fuzz" / "corpus" / args.target
    corpus.mkdir(parents=True, exist_ok=True)
    if not any(corpus.iterdir()):
        for seed in fuzz_targets.seeds(args.target):
            (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)  # noqa: S324 - a name
    crashes = ROOT / "fuzz" / "crashes"
    crashes.mkdir(parents=True, exist_ok=True)
    libfuzzer = [
        sys.argv[0],
        str(corpus),
        "-timeout=10",
        "-rss_limit_mb=3072",
        "-max_len=1048576",
        "-print_final_stats=1",
        f"-artifact_prefix={crashes}/{args.target}-",
    ]
    if args.runs:
        libfuzzer.append(f"-runs={args.runs}")
    if args.seconds:
        libfuzzer.append(f"-max_total_time={args.seconds}")

    def one_input(data: bytes) -> None:
        run(data)

    atheris.Setup(libfuzzer, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
