"""Would gating rule 7 on abstentions pay? Measured on the ai-clip held-out TEST split.

    .venv/bin/python models/ai_clip/gating.py                 # analyse + summarise (~6 min)
    .venv/bin/python models/ai_clip/gating.py --summary-only  # re-summarise

The service now gates with variant A (service.abstentions.OUT_OF_DOMAIN); this script measures
the *ungated* service as its baseline (it empties OUT_OF_DOMAIN in its own process) so that the
variants keep their meaning. Results: models/ai_clip/out/gating/ (git-ignored) and, committed,
docs/measurements/detector-gating.md.

Test split = the rows of models/corpus/data/index.tsv (the built corpus, one row per file/tile)
with split == "test" and label in {ai, real, face_real}, videos left out -- exactly the item set
models/ai_clip/embed.py + train.py evaluate (test_ai = 335, test_real = 366 in evaluation.json)
and models/ai_clip/compare.py re-scores through the service. "real" = labels real + face_real;
"ai" = label ai. face_fake (face-swap) items are another detector's test set and are left out.

Each file goes through service.pipeline.analyze with the service's default options
(service.config.Config().analyze_options(): default detectors ai-clip, face-sbi, faces-mtcnn;
default trust). A bare AnalyzeOptions() carries NO detectors (DetectorSet() is empty), so rule 7
could never fire with it.

Variants are simulated without touching the service: analyze's last call to fuse() is captured
(its Findings, stability check included); for a variant, when the image carries one of the
variant's abstention codes, every label-bearing detector result is turned into a lead (threshold
FPR set above MAX_DECIDING_FPR, so detector.claims() yields "detector.lead", non-decisive) and
fuse() is run again on the same findings.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "models" / "ai_clip" / "out" / "gating"
CORPUS = ROOT / "models/corpus/data"
EXTRA = [Path("/work/shared/fixtures/c2pa/rs/C.jpg")]
SAMPLES = ROOT / "samples"
MAX_PER_CLASS = 600
VIDEO_EXT = (".mp4", ".mov", ".webm")
VARIANTS = {
    "A": frozenset({"illustration_like", "screenshot_like"}),
    "B": frozenset({"too_small", "heavily_recompressed", "screenshot_like", "illustration_like"}),
}
IMAGE_CODES = ("too_small", "heavily_recompressed", "screenshot_like", "illustration_like")


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def test_items() -> list[dict[str, str]]:
    with (CORPUS / "index.tsv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    items = [
        r
        for r in rows
        if r["split"] == "test"
        and r["label"] in ("ai", "real", "face_real")
        and not r["file"].lower().endswith(VIDEO_EXT)
    ]
    items.sort(key=lambda r: r["file"])
    for r in items:
        r["cls"] = "ai" if r["label"] == "ai" else "real"
    # Sampling only if a class exceeds MAX_PER_CLASS (it does not: 335 AI, 366 real).
    import random

    out = []
    for cls in ("real", "ai"):
        group = [r for r in items if r["cls"] == cls]
        if len(group) > MAX_PER_CLASS:
            group = sorted(random.Random(0).sample(group, MAX_PER_CLASS), key=lambda r: r["file"])
        out += group
    return out


def sample_images() -> list[Path]:
    from provenance.media import sniff

    found = []
    for p in sorted(SAMPLES.rglob("*")):
        if not p.is_file():
            continue
        with p.open("rb") as fh:
            ft = sniff(fh.read(4096))
        if ft is not None and ft.kind == "image":
            found.append(p)
    return found


def run(records_path: Path, limit: int = 0) -> None:
    import service.pipeline as pipeline
    from service.config import Config
    from service.signals.base import Findings
    from service.signals.detector import _DETECTOR_LABELS, MAX_DECIDING_FPR, decides
    from service.verdict import fuse as real_fuse

    captured: list[Any] = []

    def capturing_fuse(findings: Any, lang: str = "en") -> Any:
        captured.append(findings)
        return real_fuse(findings, lang)

    pipeline.fuse = capturing_fuse  # in this process only; no file is changed
    pipeline.OUT_OF_DOMAIN = frozenset()  # the ungated service is the baseline
    options = Config().analyze_options()
    print(
        "detectors:",
        [d.card.name for d in options.detectors.detectors],
        "disabled:",
        options.detectors.disabled,
        flush=True,
    )

    def refuse(findings: Findings, codes: set[str], gate: frozenset[str]) -> Any:
        if not (codes & gate):
            return None  # unchanged
        results = findings.by_signal.get("detector") or ()
        lead = tuple(
            dataclasses.replace(r, threshold_fpr=max(0.05, 2 * MAX_DECIDING_FPR))
            if r.kind in _DETECTOR_LABELS and r.threshold_fpr is not None
            else r
            for r in results
        )
        by = dict(findings.by_signal)
        by["detector"] = lead
        return real_fuse(Findings(by, findings.stability), "en")

    jobs: list[tuple[Path, dict[str, Any]]] = []
    for it in test_items():
        meta = {k: it[k] for k in ("label", "family", "split", "tile", "width", "height")}
        jobs.append((CORPUS / it["file"], {"group": "test_" + it["cls"], "cls": it["cls"], **meta}))
    for p in EXTRA + sample_images():
        jobs.append((p, {"group": "extra"}))
    if limit:
        jobs = jobs[:limit] + jobs[-limit:]
    print(f"{len(jobs)} files", flush=True)
    import subprocess

    git = {
        "head": subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "dirty": subprocess.run(
            ["git", "-C", str(ROOT), "status", "--short"], capture_output=True, text=True
        ).stdout.split("\n"),
    }
    (records_path.parent / "git_state.json").write_text(json.dumps(git, indent=1))

    started = time.monotonic()
    with records_path.open("w", encoding="utf-8") as fh:
        for n, (path, meta) in enumerate(jobs, 1):
            rec: dict[str, Any] = {"file": str(path), **meta}
            captured.clear()
            t0 = time.perf_counter()
            try:
                report = pipeline.analyze(path, options)
            except Exception as exc:  # recorded, not hidden
                rec["error"] = f"{type(exc).__name__}: {exc}"
                fh.write(json.dumps(rec) + "\n")
                print(f"ERROR {path}: {rec['error']}", flush=True)
                continue
            rec["seconds"] = round(time.perf_counter() - t0, 3)
            v = report.verdict
            codes = [a.code for a in report.abstentions]
            rec.update(
                mime=report.media.mime,
                kind=report.media.kind,
                media_size=[report.media.width, report.media.height],
                verdict_label=v.label,
                verdict_rule=int(v.rule),
                verdict_confidence=v.confidence,
                verdict_basis=list(v.basis),
                abstentions=codes,
                c2pa_state=getattr(report.c2pa, "state", None),
            )
            dets = {}
            for r in report.detectors:
                dets[r.name] = {
                    "kind": r.kind,
                    "applicable": r.applicable,
                    "score": r.score,
                    "threshold": r.threshold,
                    "threshold_fpr": r.threshold_fpr,
                    "above_threshold": r.above_threshold,
                    "decides": decides(r),
                    "notes": r.notes,
                }
            rec["detectors"] = dets
            clip = dets.get("ai-clip")
            rec["aiclip_decides"] = bool(clip and clip["decides"])
            rec["decided_ai_rule7"] = v.rule == 7 and v.label == "ai_generated"
            findings = captured[-1] if captured else None
            stab = getattr(findings, "stability", None)
            rec["stability"] = (
                None
                if stab is None
                else {
                    "stable": stab.stable,
                    "failed": [t.variant for t in stab.trials if not t.holds],
                }
            )
            for name, gate in VARIANTS.items():
                nv = refuse(findings, set(codes), gate) if findings is not None else None
                if nv is None:
                    rec[f"variant_{name}"] = {"gated": False, "label": v.label, "rule": int(v.rule)}
                else:
                    rec[f"variant_{name}"] = {
                        "gated": True,
                        "label": nv.label,
                        "rule": int(nv.rule),
                    }
                vv = rec[f"variant_{name}"]
                rec[f"decided_ai_rule7_{name}"] = vv["rule"] == 7 and vv["label"] == "ai_generated"
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            if n % 25 == 0 or n == len(jobs):
                el = time.monotonic() - started
                print(f"{n}/{len(jobs)} {el:.0f}s ({el / n:.2f} s/file)", flush=True)


def pct(k: int, n: int) -> str:
    if n == 0:
        return "n/a"
    lo, hi = wilson(k, n)
    return f"{k}/{n} = {100 * k / n:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"


def summarise(records_path: Path, summary_path: Path) -> str:
    recs = [json.loads(line) for line in records_path.open(encoding="utf-8")]
    errors = [r for r in recs if "error" in r]
    test = [r for r in recs if r["group"].startswith("test_") and "error" not in r]
    L: list[str] = []
    L.append("# Gating rule 7 (ai-clip) on image abstentions: held-out test split\n")
    L.append(
        "Command: `cd /work/main && .venv/bin/python /tmp/gating/measure.py` "
        "(raw: /tmp/gating/per_file.jsonl)\n"
    )
    L.append(
        "Items: models/corpus/data/index.tsv rows with split=test, label ai (AI) or real/face_real "
        "(real), videos excluded -- the set models/ai_clip evaluation.json reports (test_ai 335, "
        "test_real 366). No sampling was needed (both classes < 600). Options: "
        "Config().analyze_options() (default detectors ai-clip, face-sbi, faces-mtcnn).\n"
    )
    gs = OUT / "git_state.json"
    if gs.exists():
        g = json.loads(gs.read_text())
        L.append(
            f"Tree at run start: HEAD {g['head'][:7]}; uncommitted: {', '.join(x.strip() for x in g['dirty'] if x.strip()) or 'none'}\n"
        )
    if errors:
        L.append(
            f"Errors ({len(errors)}): "
            + "; ".join(f"{r['file']}: {r['error']}" for r in errors)
            + "\n"
        )

    for cls, what in (
        ("real", "false-positive rate (real decided AI)"),
        ("ai", "recall (AI decided AI)"),
    ):
        rs = [r for r in test if r["cls"] == cls]
        n = len(rs)
        L.append(f"\n## {cls.upper()} images: n = {n} -- {what}\n")
        L.append("| decision | today | variant A | variant B |")
        L.append("|---|---|---|---|")
        k0 = sum(r["decided_ai_rule7"] for r in rs)
        kA = sum(r["decided_ai_rule7_A"] for r in rs)
        kB = sum(r["decided_ai_rule7_B"] for r in rs)
        L.append(f"| verdict rule 7 + ai_generated | {pct(k0, n)} | {pct(kA, n)} | {pct(kB, n)} |")
        d0 = sum(r["aiclip_decides"] for r in rs)
        dA = sum(r["aiclip_decides"] and not set(r["abstentions"]) & VARIANTS["A"] for r in rs)
        dB = sum(r["aiclip_decides"] and not set(r["abstentions"]) & VARIANTS["B"] for r in rs)
        L.append(
            f"| ai-clip above 1%-FPR threshold (before stability check) | {pct(d0, n)} | {pct(dA, n)} | {pct(dB, n)} |"
        )
        a0 = sum(r["verdict_label"] == "ai_generated" for r in rs)
        aA = sum(r["variant_A"]["label"] == "ai_generated" for r in rs)
        aB = sum(r["variant_B"]["label"] == "ai_generated" for r in rs)
        L.append(
            f"| verdict ai_generated by any rule | {pct(a0, n)} | {pct(aA, n)} | {pct(aB, n)} |"
        )
        unstable = sum(
            r["aiclip_decides"]
            and not r["decided_ai_rule7"]
            and (r["stability"] or {}).get("stable") is False
            for r in rs
        )
        other_rule = sum(
            r["aiclip_decides"] and not r["decided_ai_rule7"] and r["verdict_rule"] < 7 for r in rs
        )
        L.append(
            f"\nai-clip decides but the verdict is not rule-7 AI: {d0 - k0} "
            f"(stability check failed: {unstable}; a stronger rule decided: {other_rule})\n"
        )
        cnt = Counter(c for r in rs for c in set(r["abstentions"]))
        L.append("Abstention codes (images carrying each; an image may carry several):\n")
        L.append("| code | all | of which ai-clip decides today |")
        L.append("|---|---|---|")
        for code in (*IMAGE_CODES, *sorted(set(cnt) - set(IMAGE_CODES))):
            dec = sum(r["aiclip_decides"] for r in rs if code in r["abstentions"])
            L.append(f"| {code} | {pct(cnt[code], n)} | {dec} |")
        for name, gate in VARIANTS.items():
            g = sum(bool(set(r["abstentions"]) & gate) for r in rs)
            lost = sum(r["decided_ai_rule7"] and not r[f"decided_ai_rule7_{name}"] for r in rs)
            L.append(
                f"\nVariant {name}: images gated {pct(g, n)}; rule-7 AI decisions removed "
                f"{pct(lost, n)} (paired: the same images, so this is the exact change)"
            )
        L.append("")
        L.append("Verdicts today -> A -> B (label/rule counts): ")
        for key in ("today", "A", "B"):
            if key == "today":
                c = Counter(f"{r['verdict_label']}/r{r['verdict_rule']}" for r in rs)
            else:
                c = Counter(
                    f"{r['variant_' + key]['label']}/r{r['variant_' + key]['rule']}" for r in rs
                )
            L.append(f"- {key}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
        # per family / source
        fams: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rs:
            fam = r["family"]
            if cls == "real" and fam.startswith("camera-"):
                fam = "camera-* (all makes)"
            fams[fam].append(r)
        L.append("")
        hdr = "recall" if cls == "ai" else "false positives"
        L.append(
            f"Per {'generator family' if cls == 'ai' else 'source'} ({hdr}, verdict rule-7 AI), sorted by loss under A:\n"
        )
        L.append(
            "| family | n | today | A | B | lost under A | lost under B | too_small | heavily_recompressed | screenshot_like | illustration_like |"
        )
        L.append("|---|---|---|---|---|---|---|---|---|---|---|")
        rows = []
        for fam, fr in fams.items():
            t = sum(r["decided_ai_rule7"] for r in fr)
            a = sum(r["decided_ai_rule7_A"] for r in fr)
            b = sum(r["decided_ai_rule7_B"] for r in fr)
            cc = Counter(c for r in fr for c in set(r["abstentions"]))
            rows.append((t - a, t - b, fam, len(fr), t, a, b, cc))
        for la, lb, fam, nn, t, a, b, cc in sorted(rows, key=lambda x: (-x[0], -x[1], x[2])):
            L.append(
                f"| {fam} | {nn} | {t} | {a} | {b} | {la} | {lb} | "
                + " | ".join(str(cc[c]) for c in IMAGE_CODES)
                + " |"
            )

    L.append("\n## Specific files\n")
    L.append(
        "| file | mime | size | verdict | rule | ai-clip score (decides) | abstentions | variant A | variant B |"
    )
    L.append("|---|---|---|---|---|---|---|---|---|")
    for r in recs:
        if r["group"] != "extra":
            continue
        if "error" in r:
            L.append(f"| {r['file']} | error: {r['error']} |||||||")
            continue
        c = r["detectors"].get("ai-clip") or {}
        sc = c.get("score")
        s = "n/a" if sc is None else f"{sc:.4f} ({'yes' if c.get('decides') else 'no'})"
        L.append(
            f"| {r['file']} | {r['mime']} | {r['media_size'][0]}x{r['media_size'][1]} | {r['verdict_label']} "
            f"| {r['verdict_rule']} | {s} | {', '.join(r['abstentions']) or '-'} "
            f"| {r['variant_A']['label']}/r{r['variant_A']['rule']} | {r['variant_B']['label']}/r{r['variant_B']['rule']} |"
        )
    L.append(CAVEATS)
    text = "\n".join(L) + "\n"
    summary_path.write_text(text, encoding="utf-8")
    return text


CAVEATS = """
## Caveats

- Split identification: models/corpus/splits.toml names the test families/sources; the built
  corpus index (models/corpus/data/index.tsv, one row per file or tile) carries split=test.
  ai-clip's test set = labels ai + real + face_real, images only (embed.py's default labels;
  compare.py drops .mp4/.mov/.webm); face_fake is face-sbi's. Counts match evaluation.json
  (test_ai 335, test_real 366). Units are files/tiles, not manifest rows (grid sheets are tiled).
- A bare `AnalyzeOptions()` has an empty DetectorSet (no detectors, rule 7 can never fire), so
  the run uses the service's default configuration, `Config().analyze_options()` (ai-clip,
  face-sbi, faces-mtcnn; default trust), as `shingan analyze`/serve would without a config file.
- "Decided AI" is reported two ways. Verdict-level (rule 7 and ai_generated) is what the policy
  changes; it is lower than the detector-level rate (ai-clip above its 1%-FPR threshold, what
  evaluation.json measures) because a stronger rule (5: generator metadata) already decides some
  AI files, and the service's stability check (re-encode, re-score) demotes others to inconclusive.
  Detector-level numbers reproduce evaluation.json: FPR 2/366 = 0.55% (card 0.0055), recall
  191/335 = 57.0% (card 0.5642 = 189/335; the card notes int8 batch effects through the service).
- Variants were simulated by re-running fuse() on the captured findings with every
  label-bearing detector turned into a lead when a gating code applies; the service was not edited.
- The test split contains almost none of the content the gate is meant for: 1 illustration_like and
  1 screenshot_like real image (neither scored above threshold). The FPR benefit of A/B therefore
  cannot be shown on this split (the real FPs here are 1024x1024 face portraits with no
  abstention); only the recall cost is measured. Only clean files were analysed (not the jpeg75 /
  half / screenshot conditions of train.py).
- screenshot_like on the test split fired from metadata (XMP exif:UserComment "Screenshot", macOS),
  not from screen-size matching: the 6 kolors files are genuine screenshots of generated images.
- /work/main is being committed to concurrently; the tree at run start is recorded above
  (git_state.json). A first run on an earlier tree (246676f + uncommitted C2PA edits, kept as
  per_file.run1.jsonl / summary.run1.md) gave the same test-split counts.
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--summary-only", action="store_true")
    ap.add_argument("--limit", type=int, default=0, help="smoke test: first and last N files only")
    ap.add_argument("--out", type=Path, default=OUT / "per_file.jsonl")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    records = args.out
    if not args.summary_only:
        run(records, args.limit)
    print(
        summarise(records, records.with_name(records.stem.replace("per_file", "summary") + ".md"))
    )


if __name__ == "__main__":
    main()
