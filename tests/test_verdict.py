"""The verdict rules as a table: one row per case, including conflicts."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from provenance.c2pa import Action, AiDeclaration, C2paFinding, Codes, Signer
from provenance.metadata import Camera, GeneratorSignature, MetadataFinding
from provenance.watermarks import WatermarkFinding
from service.banks import Match
from service.rules import RULES
from service.signals import Findings
from service.verdict import fuse

SIGNER = Signer(common_name="Cam 1", organization="Example News", issuer="Example CA")


def finding(
    state: str,
    *,
    ai: str | None = None,
    ai_where: str = "active manifest, c2pa.created",
    integrity: tuple[str, ...] = (),
    credential: tuple[str, ...] = (),
    other: tuple[str, ...] = (),
    ingredient: tuple[str, ...] = (),
    capture: bool = False,
    error: str | None = None,
    declared: str | None = None,
) -> C2paFinding:
    actions = (Action("c2pa.created", digital_source_type="digitalCapture"),) if capture else ()
    failures = integrity + credential + other + tuple(f"ingr:{c}" for c in ingredient)
    return C2paFinding(
        state=state,  # type: ignore[arg-type]
        ai_declared=ai is not None,
        digital_source_type=ai or declared,
        ai_declarations=(AiDeclaration(ai, ai_where),) if ai else (),
        signer=SIGNER if state not in ("absent", "error") else None,
        actions=actions,
        codes=Codes(failure=failures),
        integrity_failures=integrity,
        credential_failures=credential,
        other_failures=other,
        ingredient_failures=ingredient,
        error=error,
    )


@dataclass(frozen=True)
class Case:
    name: str
    c2pa: C2paFinding | None
    label: str
    confidence: str
    basis: tuple[str, ...]
    rule: int
    findings: dict[str, str] = field(default_factory=dict)  # finding -> effect


UNTRUSTED = ("signingCredential.untrusted",)
CASES = [
    # rule 1: integrity failures mean manipulated, whoever signed
    Case(
        "data hash mismatch",
        finding("invalid", integrity=("assertion.dataHash.mismatch",), credential=UNTRUSTED),
        "manipulated",
        "high",
        ("c2pa",),
        1,
        {"c2pa.integrity_failure": "supports"},
    ),
    Case(
        "bmff hash mismatch on trusted signer",
        finding("invalid", integrity=("assertion.bmffHash.mismatch",)),
        "manipulated",
        "high",
        ("c2pa",),
        1,
    ),
    Case(
        "claim signature mismatch",
        finding("invalid", integrity=("claimSignature.mismatch",)),
        "manipulated",
        "high",
        ("c2pa",),
        1,
    ),
    Case(
        "tampered file that declared AI: manipulated, declaration not relied on",
        finding(
            "invalid", ai="trainedAlgorithmicMedia", integrity=("assertion.dataHash.mismatch",)
        ),
        "manipulated",
        "high",
        ("c2pa",),
        1,
        {"c2pa.integrity_failure": "supports", "c2pa.ai_declared_unverified": "neutral"},
    ),
    # credential problems are not tampering
    Case(
        "expired certificate without timestamp",
        finding("invalid", credential=("signingCredential.expired", "signingCredential.untrusted")),
        "inconclusive",
        "low",
        (),
        8,
        {"c2pa.credential_problem": "neutral", "c2pa.invalid_credentials": "neutral"},
    ),
    Case(
        "missing EKU",
        finding("invalid", credential=("signingCredential.invalid",)),
        "inconclusive",
        "low",
        (),
        8,
        {"c2pa.credential_problem": "neutral"},
    ),
    Case(
        "AI declared but credential invalid: not relied on",
        finding("invalid", ai="trainedAlgorithmicMedia", credential=("signingCredential.invalid",)),
        "inconclusive",
        "low",
        (),
        8,
        {"c2pa.ai_declared_unverified": "neutral"},
    ),
    # rule 2: AI declared in a valid manifest
    Case(
        "AI declared, trusted signer",
        finding("trusted", ai="trainedAlgorithmicMedia"),
        "ai_generated",
        "high",
        ("c2pa",),
        2,
        {"c2pa.ai_declared": "supports"},
    ),
    Case(
        "AI declared, untrusted signer",
        finding("valid", ai="trainedAlgorithmicMedia", credential=UNTRUSTED),
        "ai_generated",
        "medium",
        ("c2pa",),
        2,
    ),
    Case(
        "composite with AI declared in an ingredient",
        finding(
            "trusted",
            ai="compositeWithTrainedAlgorithmicMedia",
            ai_where="ingredient 'a.png', c2pa.created",
        ),
        "ai_generated",
        "high",
        ("c2pa",),
        2,
    ),
    Case(
        "algorithmicMedia (software-made, no training data) is not AI",
        finding("valid", declared="algorithmicMedia", credential=UNTRUSTED),
        "inconclusive",
        "low",
        (),
        8,
        {"c2pa.declared_algorithmic": "neutral", "c2pa.valid_untrusted": "neutral"},
    ),
    Case(
        "compositeSynthetic from a trusted signer: not AI, provenance holds",
        finding("trusted", declared="compositeSynthetic"),
        "authentic",
        "high",
        ("c2pa",),
        6,
        {"c2pa.declared_algorithmic": "neutral", "c2pa.trusted": "supports"},
    ),
    # an ingredient altered after it was signed contradicts, and caps the confidence
    Case(
        "trusted with an altered ingredient: contradicted, capped at medium",
        finding("trusted", capture=True, ingredient=("claimSignature.mismatch",)),
        "authentic",
        "medium",
        ("c2pa",),
        6,
        {"c2pa.trusted": "supports", "c2pa.ingredient_altered": "contradicts"},
    ),
    Case(
        "AI declared with an altered ingredient: capped at medium",
        finding(
            "trusted", ai="trainedAlgorithmicMedia", ingredient=("assertion.hashedURI.mismatch",)
        ),
        "ai_generated",
        "medium",
        ("c2pa",),
        2,
        {"c2pa.ai_declared": "supports", "c2pa.ingredient_altered": "contradicts"},
    ),
    Case(
        "the file itself tampered: an altered ingredient agrees, nothing capped",
        finding(
            "valid",
            integrity=("assertion.dataHash.mismatch",),
            ingredient=("claimSignature.mismatch",),
            credential=UNTRUSTED,
        ),
        "manipulated",
        "high",
        ("c2pa",),
        1,
        {"c2pa.integrity_failure": "supports", "c2pa.ingredient_altered": "supports"},
    ),
    Case(
        "untrusted signer with an altered ingredient: nothing decided",
        finding("valid", ingredient=("claimSignature.mismatch",), credential=UNTRUSTED),
        "inconclusive",
        "low",
        (),
        8,
        {"c2pa.ingredient_altered": "neutral"},
    ),
    # rule 6: trusted provenance, nothing else
    Case(
        "trusted capture",
        finding("trusted", capture=True),
        "authentic",
        "high",
        ("c2pa",),
        6,
        {"c2pa.trusted": "supports"},
    ),
    Case(
        "trusted with an ingredient failure: shown, still authentic",
        finding("trusted", ingredient=("signingCredential.expired",)),
        "authentic",
        "high",
        ("c2pa",),
        6,
        {"c2pa.trusted": "supports", "c2pa.ingredient_failure": "neutral"},
    ),
    Case(
        "valid but untrusted signer never makes authentic",
        finding("valid", capture=True, credential=UNTRUSTED),
        "inconclusive",
        "low",
        (),
        8,
        {"c2pa.valid_untrusted": "neutral"},
    ),
    # rule 8: everything else
    Case(
        "no manifest", finding("absent"), "inconclusive", "low", (), 8, {"c2pa.absent": "neutral"}
    ),
    Case(
        "unreadable manifest",
        finding("error", error="unknown algorithm"),
        "inconclusive",
        "low",
        (),
        8,
        {"c2pa.error": "neutral"},
    ),
    Case("C2PA did not run", None, "inconclusive", "low", (), 8),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule_table(case: Case) -> None:
    v = fuse(Findings.of(c2pa=case.c2pa))
    assert (v.label, v.confidence, v.basis, v.rule) == (
        case.label,
        case.confidence,
        case.basis,
        case.rule,
    )
    assert v.score is None
    effects = {r.finding: r.effect for r in v.reasons}
    for finding_code, effect in case.findings.items():
        assert effects.get(finding_code) == effect, effects
    assert v.summary.endswith(".")
    if case.label == "inconclusive":
        assert v.summary.startswith("We cannot tell")


def test_every_reason_names_a_known_rule() -> None:
    numbers = {r.number for r in RULES}
    for case in CASES:
        for reason in fuse(Findings.of(c2pa=case.c2pa)).reasons:
            assert reason.rule in numbers
            assert reason.detail


def test_ai_summary_wording_is_careful() -> None:
    v = fuse(Findings.of(c2pa=finding("trusted", ai="trainedAlgorithmicMedia")))
    assert "says it was made with an AI tool" in v.summary
    assert "trusted signer" in v.summary
    assert "fake" not in v.summary.lower()


def test_a_capped_verdict_says_why_in_its_summary() -> None:
    v = fuse(Findings.of(c2pa=finding("trusted", ingredient=("claimSignature.mismatch",))))
    assert (v.label, v.confidence) == ("authentic", "medium")
    assert v.summary.startswith("The file's Content Credentials were signed by a trusted signer")
    assert v.summary.endswith("so part of its history is unverified.")
    uncapped = fuse(Findings.of(c2pa=finding("trusted", ingredient=("signingCredential.expired",))))
    assert "unverified" not in uncapped.summary


def test_absence_is_never_authentic() -> None:
    for state in ("absent", "error", "valid", "invalid"):
        assert fuse(Findings.of(c2pa=finding(state))).label != "authentic"


# --- rules 3 and 5, and conflicts across signals -------------------------------------------------


def mark(detected: bool, applicable: bool = True) -> WatermarkFinding:
    return WatermarkFinding(
        scheme="sdxl",
        label="Stable Diffusion XL",
        detected=detected,
        confidence=0.999999 if detected else 0.0,
        payload="0xB3EC907BB19E" if detected else None,
        bits_matched=46 if detected else 25,
        bits_total=48,
        threshold=41,
        p_chance=1e-11 if detected else 0.4,
        size_tried="original",
        applicable=applicable,
    )


A1111_META = MetadataFinding(
    generator="automatic1111",
    ai_declared=True,
    signatures=(GeneratorSignature("automatic1111", "PNG text 'parameters'", "x", model="sd15"),),
)
CAMERA_META = MetadataFinding(camera=Camera(make="Canon", model="Canon EOS R5"))


@dataclass(frozen=True)
class MultiCase:
    name: str
    findings: Findings
    label: str
    confidence: str
    basis: tuple[str, ...]
    effects: dict[str, str] = field(default_factory=dict)


MULTI = [
    MultiCase(
        "watermark alone",
        Findings.of(c2pa=finding("absent"), watermark=(mark(True),)),
        "ai_generated",
        "high",
        ("watermark",),
        {"watermark.sdxl": "supports", "c2pa.absent": "neutral"},
    ),
    MultiCase(
        "no watermark is not evidence",
        Findings.of(c2pa=finding("absent"), watermark=(mark(False),)),
        "inconclusive",
        "low",
        (),
        {"watermark.none": "neutral"},
    ),
    MultiCase(
        "metadata alone",
        Findings.of(c2pa=finding("absent"), metadata=A1111_META),
        "ai_generated",
        "medium",
        ("metadata",),
        {"metadata.generator": "supports"},
    ),
    MultiCase(
        "camera EXIF alone never makes authentic",
        Findings.of(c2pa=finding("absent"), metadata=CAMERA_META),
        "inconclusive",
        "low",
        (),
        {"metadata.camera": "neutral"},
    ),
    MultiCase(
        "watermark outranks metadata, both support",
        Findings.of(c2pa=finding("absent"), metadata=A1111_META, watermark=(mark(True),)),
        "ai_generated",
        "high",
        ("watermark", "metadata"),
        {"watermark.sdxl": "supports", "metadata.generator": "supports"},
    ),
    MultiCase(
        "trusted capture manifest contradicted by a watermark",
        Findings.of(c2pa=finding("trusted", capture=True), watermark=(mark(True),)),
        "ai_generated",
        "high",
        ("watermark",),
        {"watermark.sdxl": "supports", "c2pa.trusted": "contradicts"},
    ),
    MultiCase(
        "tampering outranks a watermark",
        Findings.of(
            c2pa=finding("invalid", integrity=("assertion.dataHash.mismatch",)),
            watermark=(mark(True),),
        ),
        "manipulated",
        "high",
        ("c2pa",),
        {"c2pa.integrity_failure": "supports", "watermark.sdxl": "contradicts"},
    ),
    MultiCase(
        "AI declared in C2PA and metadata agree",
        Findings.of(c2pa=finding("trusted", ai="trainedAlgorithmicMedia"), metadata=A1111_META),
        "ai_generated",
        "high",
        ("c2pa", "metadata"),
    ),
    MultiCase(
        "known fake in a bank, near-identical",
        Findings.of(
            c2pa=finding("absent"), known_media=(Match("fact-checks", "F-12", "manipulated", 6),)
        ),
        "manipulated",
        "high",
        ("known_media",),
        {"known_media.match": "supports"},
    ),
    MultiCase(
        "official original in a bank outranks generator metadata",
        Findings.of(
            c2pa=finding("absent"),
            metadata=A1111_META,
            known_media=(Match("election-office", "poster-3", "authentic", 24),),
        ),
        "authentic",
        "medium",
        ("known_media",),
        {"known_media.match": "supports", "metadata.generator": "contradicts"},
    ),
    MultiCase(
        "a near match is shown, not decided",
        Findings.of(
            c2pa=finding("absent"), known_media=(Match("fact-checks", "F-9", "manipulated", 38),)
        ),
        "inconclusive",
        "low",
        (),
        {"known_media.near": "neutral"},
    ),
    MultiCase(
        "watermark outranks a bank match",
        Findings.of(
            c2pa=finding("absent"),
            watermark=(mark(True),),
            known_media=(Match("originals", "photo-1", "authentic", 10),),
        ),
        "ai_generated",
        "high",
        ("watermark",),
        {"known_media.match": "contradicts"},
    ),
    MultiCase(
        "trusted capture with camera EXIF stays authentic",
        Findings.of(c2pa=finding("trusted", capture=True), metadata=CAMERA_META),
        "authentic",
        "high",
        ("c2pa",),
        {"metadata.camera": "neutral"},
    ),
]


@pytest.mark.parametrize("case", MULTI, ids=[c.name for c in MULTI])
def test_rule_table_across_signals(case: MultiCase) -> None:
    v = fuse(case.findings)
    assert (v.label, v.confidence, v.basis) == (case.label, case.confidence, case.basis)
    effects = {r.finding: r.effect for r in v.reasons}
    for name, effect in case.effects.items():
        assert effects.get(name) == effect, effects
