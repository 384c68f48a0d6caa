"""Write ``docs/measurements/detectors.md`` from the measurement files (no number typed by hand).

    python models/report.py

Reads ``models/corpus/MANIFEST.tsv``, ``models/ai_clip/evaluation.json``,
``models/face_sbi/evaluation.json``, ``docs/measurements/detectors.json`` (``compare.py``) and
``docs/measurements/detector-speed.json`` (``benchmarks/bench_detectors.py --json``), and the
prose in ``docs/measurements/detectors.intro.md``.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "measurements" / "detectors.md"


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def copies_table(t: dict[str, Any]) -> list[str]:
    """AUC, recall and false positives at the threshold for each test copy measured."""
    out = [
        "| copy | AUC | recall at the threshold | false positives (95% interval) |",
        "|---|---:|---:|---:|",
    ]
    for c in ("clean", "jpeg75", "half", "screenshot"):
        if f"auc_{c}" in t:
            out.append(
                f"| {c} | {t[f'auc_{c}']} | {pct(t[f'recall_{c}'])} | {pct(t[f'fpr_{c}'])} "
                f"{t[f'fpr_{c}_95ci']} |"
            )
    return out


def corpus_table() -> list[str]:
    with (ROOT / "models/corpus/MANIFEST.tsv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    cells: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        cells[(r["label"], r["split"])].append(r)
    out = [
        "| label | split | files | families / sources | repositories and packages |",
        "|---|---|---:|---:|---:|",
    ]
    for label in ("ai", "real", "face_real", "face_fake"):
        for split in ("train", "val", "calib", "test"):
            got = cells.get((label, split))
            if got:
                out.append(
                    f"| {label} | {split} | {len(got)} | {len({r['family'] for r in got})} | "
                    f"{len({r['source'] for r in got})} |"
                )
    for split in ("val", "test"):
        fams = sorted({r["family"] for r in cells.get(("ai", split), [])})
        out.append("")
        out.append(f"AI families in {split}: {', '.join(fams)}.")
    return out


def ai_section(ev: dict[str, Any]) -> list[str]:
    t, th, m = ev["test"], ev["threshold"], ev["model"]
    out = [
        "### Chosen on validation",
        "",
        "| aligned fakes | features | C | validation AUC | test AUC (not used to choose) |",
        "|---|---|---:|---:|---:|",
    ]
    for s in ev["selection"]:
        out.append(
            f"| {s.get('aligned_fakes', False)} | {s['features']} | {s['C']} | {s['val_auc']} | "
            f"{s.get('test_auc_not_used_to_choose', '-')} |"
        )
    out += [
        "",
        f"Chosen: features `{m['features']}`, C {m['C']}, aligned fakes "
        f"{m.get('aligned_fakes', False)}. Threshold {th['value']:.6f}: "
        f"{th['calibration_false_positives']} of {th['calibration_reals']} calibration images "
        f"above it (95% interval of the rate {th['calibration_fpr_95ci']}).",
        "",
        f"### Test split ({t['test_ai']} AI images of unseen families, {t['test_real']} real "
        "images of unseen sources)",
        "",
    ]
    out += copies_table(t)
    out += ["", "Recall by unseen generator family (clean / JPEG 75 / half / screenshot):", ""]
    out += ["| family | n | clean | jpeg75 | half | screenshot |", "|---|---:|---:|---:|---:|---:|"]
    fps = []
    for fam, v in sorted(t["per_family"].items()):
        if "recall_clean" in v:
            out.append(
                f"| {fam} | {v['n']} | "
                + " | ".join(
                    pct(v.get(f"recall_{c}")) for c in ("clean", "jpeg75", "half", "screenshot")
                )
                + " |"
            )
        elif any(
            v.get(f"false_positive_rate_{c}", 0) for c in ("clean", "jpeg75", "half", "screenshot")
        ):
            fps.append(
                f"{fam} ({v['n']} images: "
                + ", ".join(
                    f"{c} {pct(v.get(f'false_positive_rate_{c}'))}"
                    for c in ("clean", "jpeg75", "half", "screenshot")
                )
                + ")"
            )
    n_sources = sum(1 for v in t["per_family"].values() if "recall_clean" not in v)
    out += [
        "",
        f"False positives by real source: none in {n_sources - len(fps)} of {n_sources} test "
        f"sources; {'; '.join(fps) if fps else 'none anywhere'}.",
    ]
    return out


def face_section(ev: dict[str, Any]) -> list[str]:
    t, th, ch, tr = ev["test"], ev["threshold"], ev["chosen"], ev["train"]
    out = [
        f"Trained on {tr['real_faces']} real faces ({tr['real_sources']} sources) and "
        f"{tr['generated_faces']} faces from AI images ({tr['generated_families']} families).",
        "",
        "| positives | C | validation AUC |",
        "|---|---:|---:|",
    ]
    out += [f"| {s['positives']} | {s['C']} | {s['val_auc']} |" for s in ev["selection"]]
    out += [
        "",
        f"Chosen: {ch['positives']}, C {ch['C']}. Threshold {th['value']:.6f}: "
        f"{th['calibration_false_positives']} of {th['calibration_faces']} calibration faces above "
        f"it (95% interval {th['calibration_fpr_95ci']}).",
        "",
        f"Test: {t['test_real_faces']} real faces of unseen sources against "
        f"{t['test_fake_faces']} faces from swaps and reenactments.",
        "",
    ]
    out += copies_table(t)
    out += ["", "| tool | faces | AUC against all test reals | recall |", "|---|---:|---:|---:|"]
    for fam, v in sorted(t["per_source"].items()):
        if v["kind"] == "swap":
            out.append(
                f"| {fam} | {v['n']} | {v['auc_vs_all_test_reals_clean']} | "
                f"{pct(v['recall_clean'])} |"
            )
    return out


def compare_section(cmp: dict[str, Any] | None) -> list[str]:
    if not cmp:
        return ["(not measured: run models/ai_clip/compare.py)"]
    out = [
        f"{cmp['test_ai']} AI images of {len(cmp['families_ai'])} unseen families and "
        f"{cmp['test_real']} real images, clean, one run (`{cmp['command']}`).",
        "",
        "| detector | AUC | recall at its own threshold | false positives at it (95% interval) "
        "| recall at 1% FP on the test reals | median ms per image |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, d in cmp["detectors"].items():
        out.append(
            f"| {name} | {d['auc']} | {pct(d['recall_at_own_threshold'])} | "
            f"{pct(d['fpr_at_own_threshold'])} {d['fpr_at_own_threshold_95ci']} | "
            f"{pct(d['recall_at_1pct_fpr_on_test_reals'])} | {d['median_ms_per_image']} |"
        )
    return out


def speed_section(speed: dict[str, Any] | None) -> list[str]:
    if not speed:
        return ["(not measured: run benchmarks/bench_detectors.py --face --json)"]
    sizes = speed["sizes"]
    out = [
        f"`{speed['command']}` (medians of {speed['repeat']} runs, 2 cores, {speed['date']}):",
        "",
        "| detector | " + " | ".join(sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for name, cells in speed["detectors"].items():
        out.append(f"| {name} | " + " | ".join(f"{c:.0f} ms" for c in cells) + " |")
    if "video" in speed:
        v = speed["video"]
        out += ["", f"Video: {v}"]
    return out


def main() -> None:
    intro = (ROOT / "docs/measurements/detectors.intro.md").read_text(encoding="utf-8")
    parts = intro.split("<!-- ")
    text = [parts[0].rstrip(), ""]
    sections = {
        "corpus": corpus_table(),
        "ai": ai_section(load(ROOT / "models/ai_clip/evaluation.json")),
        "face": face_section(load(ROOT / "models/face_sbi/evaluation.json")),
        "compare": compare_section(load(ROOT / "docs/measurements/detectors.json")),
        "speed": speed_section(load(ROOT / "docs/measurements/detector-speed.json")),
    }
    for part in parts[1:]:
        key, _, rest = part.partition(" -->")
        text += sections[key.strip()] + [""] + [rest.strip(), ""]
    OUT.write_text("\n".join(text).rstrip() + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
