"""The ``shingan.report/1`` contract as typed models: one source for the JSON form of a report,
``docs/report.schema.json`` and the report schemas of the OpenAPI document.

Each model reads its values from the analysis dataclasses by attribute (``from_attributes``), so
a finding's field reaches the report under its own name; the few places where the report's shape
differs from the analysis objects (PDQ hashes written as hex, the ``provenance`` grouping, a
stability trial's ``decision_holds``) are spelled out in ``service.report.Report.contract``.
Field order here is key order in the JSON. Fields may be added; none may be removed or renamed
(docs/design.md).

Building the model validates the report against the contract, so a report that breaks it fails
where it is made instead of reaching a client.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AliasPath, BaseModel, ConfigDict, Field
from pydantic.json_schema import GenerateJsonSchema

from service.abstentions import AbstentionCode
from service.messages import LANGUAGES
from service.rules import Confidence, Effect, Label, Rule, Signal

SCHEMA = "shingan.report/1"

Probability = Annotated[float, Field(ge=0, le=1)]
Sha256 = Annotated[str, Field(pattern="^[0-9a-f]{64}$")]
BankLabel = Literal["authentic", "ai_generated", "manipulated"]
#: ``language`` is validated against the catalogues found at import time.
Language = Annotated[str, Field(json_schema_extra={"enum": list(LANGUAGES)})]


class SchemaGenerator(GenerateJsonSchema):
    """pydantic's JSON Schema without a ``title`` on every property (the names say it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


class Model(BaseModel):
    """Read from attributes, frozen; every field is always written, so every field is required.

    Unknown fields are not forbidden in the schema: a report may gain fields within ``/1``."""

    model_config = ConfigDict(
        from_attributes=True,
        frozen=True,
        json_schema_serialization_defaults_required=True,
    )


# --- provenance.c2pa ---------------------------------------------------------------------------


class Signer(Model):
    common_name: str | None
    organization: str | None
    issuer: str | None
    issuer_organization: str | None
    serial: str | None
    algorithm: str | None
    not_before: str | None
    not_after: str | None


class Timestamp(Model):
    authority: str | None
    time: str | None
    trusted: bool


class AiDeclaration(Model):
    digital_source_type: str
    where: str


class Action(Model):
    action: str
    software_agent: str | None
    digital_source_type: str | None
    when: str | None
    description: str | None


class Ingredient(Model):
    title: str | None
    format: str | None
    relationship: str | None
    manifest_label: str | None
    has_manifest: bool
    claim_generator: str | None
    signer: str | None
    digital_source_type: str | None
    ai_declared: bool
    failures: list[str]
    thumbnail: str | None = Field(description="data: URI, only with ?thumbnails=1")
    ingredients: list[Ingredient]


class Codes(Model):
    success: list[str]
    informational: list[str]
    failure: list[str]


class StatusEntry(Model):
    code: str
    kind: Literal["success", "informational", "failure"]
    scope: Literal["active", "ingredient"]
    explanation: str
    url: str


class C2pa(Model):
    state: Literal["absent", "invalid", "valid", "trusted", "error"]
    ai_declared: bool
    digital_source_type: str | None
    ai_declarations: list[AiDeclaration]
    claim_generator: str | None
    title: str | None
    format: str | None
    manifest_label: str | None
    signer: Signer | None
    signed_at: str | None
    timestamp: Timestamp | None
    actions: list[Action]
    ingredients: list[Ingredient]
    codes: Codes
    status: list[StatusEntry]
    integrity_failures: list[str]
    credential_failures: list[str]
    other_failures: list[str]
    ingredient_failures: list[str]
    thumbnail: str | None
    remote_url: str | None
    error: str | None
    sidecar: bool = Field(description="validated against a separate manifest file (.c2pa)")


# --- provenance.metadata and provenance.watermarks ---------------------------------------------


class GeneratorSignature(Model):
    name: str
    field: str
    evidence: str
    model: str | None
    sampler: str | None
    seed: str | None
    steps: str | None
    prompt: str | None
    negative_prompt: str | None
    variant: str | None


class Camera(Model):
    make: str | None
    model: str | None
    lens: str | None
    serial: str | None
    capture_time: str | None


class Metadata(Model):
    generator: str | None
    ai_declared: bool
    digital_source_type: str | None
    signatures: list[GeneratorSignature]
    camera: Camera | None
    software: list[str]
    editors: list[str]
    modified_at: str | None
    has_gps: bool
    has_makernote: bool
    inconsistencies: list[str]
    fields: dict[str, str]
    error: str | None


class Watermark(Model):
    scheme: Literal["sd1", "sd2", "sdxl"]
    label: str
    detected: bool
    confidence: Probability
    payload: str | None
    bits_matched: Annotated[int, Field(ge=0)]
    bits_total: Annotated[int, Field(ge=1)]
    threshold: int
    p_chance: Probability
    size_tried: str
    applicable: bool
    note: str | None


class Provenance(Model):
    c2pa: C2pa
    metadata: Metadata
    watermarks: list[Watermark]


# --- detectors, verdict, matches ---------------------------------------------------------------


class Detector(Model):
    name: str
    version: str
    kind: str
    applicable: bool
    score: Probability | None
    threshold: float | None
    threshold_fpr: float | None
    above_threshold: bool
    notes: str
    details: dict[str, Any]


class Reason(Model):
    signal: Signal
    finding: str
    effect: Effect
    detail: str
    rule: Rule


class StabilityTrial(Model):
    variant: str
    scores: dict[str, float | None]
    decision_holds: bool = Field(validation_alias="holds")


class Stability(Model):
    """Detector-only decisions: re-scoring after re-encodings."""

    stable: bool
    tried: list[StabilityTrial] = Field(validation_alias="trials")


class Verdict(Model):
    label: Label
    confidence: Confidence
    basis: list[Signal]
    score: Probability | None
    summary: str
    rule: Rule
    stability: Stability | None
    reasons: list[Reason]


class Match(Model):
    bank: str
    entry: str
    distance: Annotated[int, Field(ge=0, le=256)]
    label: BankLabel
    note: str


# --- the media and the report ------------------------------------------------------------------


class FrameHash(Model):
    time_s: float
    pdq: str = Field(validation_alias=AliasPath("hash", "hex"))
    pdq_quality: int = Field(validation_alias=AliasPath("hash", "quality"))


class Hashes(Model):
    pdq: str | None = Field(description="PDQ hash, 64 hex digits")
    pdq_quality: int | None
    frames: list[FrameHash]


class Media(Model):
    sha256: Sha256
    bytes: Annotated[int, Field(ge=1)]
    mime: str
    kind: Literal["image", "video", "audio", "other"]
    width: int | None
    height: int | None
    duration_s: float | None
    frames_analyzed: int | None
    filename: str | None
    hashes: Hashes
    incomplete: str | None = Field(
        description=(
            "where the file looks cut short (an interrupted download is the usual cause); "
            "null when it looks whole or its format is not checked"
        )
    )


class TimelineEntry(Model):
    time_s: float
    pdq: str | None
    scores: dict[str, float | None]
    faces: int | None


class Forensics(Model):
    """PNG data: URIs of the error-level and noise maps."""

    error_level: str
    noise: str


class Abstention(Model):
    code: AbstentionCode
    message: str


class Versions(Model):
    shingan: str
    c2pa_sdk: str
    c2pa_python: str | None
    models: dict[str, Sha256] = Field(description="sha256 of each detector model that ran")


class Report(Model):
    schema_: Literal["shingan.report/1"] = Field(alias="schema")
    id: str
    language: Language = Field(description="language of summary and reasons")
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    media: Media
    verdict: Verdict
    provenance: Provenance
    detectors: list[Detector]
    matches: list[Match]
    timeline: list[TimelineEntry] = Field(description="video only: one entry per analysed frame")
    forensics: Forensics | None = Field(
        description="with ?forensics=1: PNG data: URIs of the error-level and noise maps"
    )
    warnings: list[str]
    abstentions: list[Abstention] = Field(
        description="typed reasons pixel signals say little (route to a person)"
    )
    timings_ms: dict[str, float]
    versions: Versions

    def to_json_data(self) -> dict[str, Any]:
        """JSON-ready data, keys in contract order."""
        return self.model_dump(mode="json", by_alias=True)


#: The models whose schemas the OpenAPI document and docs/report.schema.json carry.
REPORT_MODELS: tuple[type[Model], ...] = (Report,)


def json_schema() -> dict[str, Any]:
    """A standalone JSON Schema (2020-12) for one report: ``docs/report.schema.json``."""
    body = Report.model_json_schema(mode="serialization", schema_generator=SchemaGenerator)
    defs = body.pop("$defs")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://shingan.invalid/{SCHEMA}.schema.json",
        **body,
        "title": SCHEMA,
        "$defs": dict(sorted(defs.items())),
    }


def rendered_schema() -> str:
    return json.dumps(json_schema(), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    # python -m service.contract > docs/report.schema.json
    print(rendered_schema(), end="")
