"""C2PA Content Credentials: rules 1 (integrity), 2 (declared AI) and 6 (trusted capture)."""

from __future__ import annotations

from collections.abc import Iterable

from provenance import c2pa as c2pa_mod
from provenance.c2pa import C2paFinding, Ingredient, classify_code
from provenance.source_types import ALGORITHMIC_SOURCE_TYPES
from service.messages import M, Msg
from service.rules import Claim, Label, Rule, claim
from service.signals.base import Findings, Inputs, SignalType
from service.stages import StageTimeout


def _who(f: C2paFinding) -> Msg:
    if f.signer is None:
        return M("who.unknown")
    name = f.signer.organization or f.signer.common_name
    if not name:
        return M("who.unnamed")
    if f.signer.common_name and f.signer.organization and f.signer.common_name != name:
        name = f"{f.signer.common_name} ({f.signer.organization})"
    return M("who.quoted", name=name)


def _codes(codes: Iterable[str]) -> str:
    return ", ".join(codes)


def _altered_titles(f: C2paFinding) -> str:
    """The titles of the ingredients whose own failures show tampering."""
    names: list[str] = []

    def walk(items: Iterable[Ingredient]) -> None:
        for i in items:
            if any(classify_code(c) == "integrity" for c in i.failures):
                names.append(repr(i.title) if i.title else "?")
            walk(i.ingredients)

    walk(f.ingredients)
    return ", ".join(dict.fromkeys(names)) or "?"


class C2pa(SignalType[C2paFinding]):
    name = "c2pa"
    needs = "file"

    def find(self, inputs: Inputs) -> C2paFinding:
        """The embedded manifest, or the one given as a sidecar; a sidecar found beside a file
        with none embedded (``find_sidecars``) is used the way C2PA tools do."""
        media, options = inputs.media, inputs.options

        def verify(manifest: bytes | None) -> C2paFinding:
            with media.path.open("rb") as stream:  # opened in the stage's own thread
                return c2pa_mod.verify_c2pa(
                    stream,
                    media.mime,
                    options.trust,
                    include_thumbnails=options.include_thumbnails,
                    manifest=manifest,
                )

        try:
            finding = inputs.raw("c2pa", lambda: verify(inputs.manifest))
            if finding.state == "absent" and inputs.manifest is None and options.find_sidecars:
                beside = c2pa_mod.find_sidecar(media.path)
                if beside is not None:
                    sidecar = c2pa_mod.read_sidecar(beside)
                    finding = inputs.raw("c2pa", lambda: verify(sidecar))
            return finding
        except StageTimeout:
            inputs.overran("C2PA")
            return C2paFinding(
                state="error",
                error=(
                    f"verification took longer than {options.stage_timeout_s:g} s and was stopped"
                ),
            )
        except c2pa_mod.SidecarError as exc:
            return C2paFinding(state="error", error=f"sidecar manifest: {exc.message}")

    def claims(self, f: C2paFinding) -> Iterable[Claim]:
        """Rules 1, 2 and 6, and context for the rest."""
        if f.state == "absent":
            yield claim("c2pa", "c2pa.absent", Rule.DEFAULT, None, "low", False, M("c2pa.absent"))
            return
        if f.state == "error":
            if f.error and f.remote_url:
                msg = M("c2pa.error.remote", error=f.error, url=f.remote_url)
            elif f.error:
                msg = M("c2pa.error", error=f.error)
            else:
                msg = M("c2pa.error.plain")
            yield claim("c2pa", "c2pa.error", Rule.DEFAULT, None, "low", False, msg)
            return

        tampered = bool(f.integrity_failures)
        if tampered:
            yield claim(
                "c2pa",
                "c2pa.integrity_failure",
                Rule.C2PA_INTEGRITY,
                "manipulated",
                "high",
                True,
                M("c2pa.integrity_failure", codes=_codes(f.integrity_failures)),
            )
        problems = [c for c in f.credential_failures if c != "signingCredential.untrusted"]
        if problems:
            yield claim(
                "c2pa",
                "c2pa.credential_problem",
                Rule.C2PA_TRUSTED_CAPTURE,
                None,
                "low",
                False,
                M("c2pa.credential_problem", who=_who(f), codes=_codes(problems)),
            )
        if f.other_failures:
            yield claim(
                "c2pa",
                "c2pa.other_failure",
                Rule.C2PA_TRUSTED_CAPTURE,
                None,
                "low",
                False,
                M("c2pa.other_failure", codes=_codes(f.other_failures)),
            )
        altered = [c for c in f.ingredient_failures if classify_code(c) == "integrity"]
        if altered:
            # Contradicts whatever the manifest decides, and caps its confidence: the history
            # the altered ingredient brings (an AI declaration, a capture) is unverified.
            yield claim(
                "c2pa",
                "c2pa.ingredient_altered",
                Rule.C2PA_INTEGRITY,
                "manipulated",
                "medium",
                False,
                M("c2pa.ingredient_altered", codes=_codes(altered), which=_altered_titles(f)),
                cap="medium",
            )
        unverified = [c for c in f.ingredient_failures if c not in altered]
        if unverified:
            yield claim(
                "c2pa",
                "c2pa.ingredient_failure",
                Rule.C2PA_TRUSTED_CAPTURE,
                None,
                "low",
                False,
                M("c2pa.ingredient_failure", codes=_codes(unverified)),
            )

        signed_ok = f.state in ("valid", "trusted")
        if f.ai_declared:
            where = f.ai_declarations[0].where if f.ai_declarations else "the manifest"
            kind = f.digital_source_type or "AI"
            if signed_ok and not tampered:
                trusted = f.state == "trusted"
                key = "c2pa.ai_declared.trusted" if trusted else "c2pa.ai_declared.untrusted"
                yield claim(
                    "c2pa",
                    "c2pa.ai_declared",
                    Rule.C2PA_AI_DECLARED,
                    "ai_generated",
                    "high" if trusted else "medium",
                    True,
                    M(key, kind=kind, where=where, who=_who(f)),
                )
            else:
                key = (
                    "c2pa.ai_declared_unverified.tampered"
                    if tampered
                    else "c2pa.ai_declared_unverified.invalid"
                )
                yield claim(
                    "c2pa",
                    "c2pa.ai_declared_unverified",
                    Rule.C2PA_AI_DECLARED,
                    None,
                    "low",
                    False,
                    M(key, kind=kind, where=where),
                )

        if not f.ai_declared and f.digital_source_type in ALGORITHMIC_SOURCE_TYPES:
            yield claim(
                "c2pa",
                "c2pa.declared_algorithmic",
                Rule.C2PA_AI_DECLARED,
                None,
                "low",
                False,
                M(f"c2pa.declared.{f.digital_source_type}", who=_who(f)),
            )

        if f.state == "trusted" and not tampered and not f.ai_declared:
            key = "c2pa.trusted.capture" if f.capture_declared else "c2pa.trusted.history"
            yield claim(
                "c2pa",
                "c2pa.trusted",
                Rule.C2PA_TRUSTED_CAPTURE,
                "authentic",
                "high",
                True,
                M(key, who=_who(f)),
            )
        elif f.state == "valid" and not f.ai_declared:
            yield claim(
                "c2pa",
                "c2pa.valid_untrusted",
                Rule.C2PA_TRUSTED_CAPTURE,
                None,
                "low",
                False,
                M("c2pa.valid_untrusted", who=_who(f)),
            )
        elif f.state == "invalid" and not tampered and not f.ai_declared:
            yield claim(
                "c2pa",
                "c2pa.invalid_credentials",
                Rule.C2PA_TRUSTED_CAPTURE,
                None,
                "low",
                False,
                M("c2pa.invalid_credentials"),
            )

    def summary(self, label: Label, findings: Findings) -> Msg | None:
        f = findings.get(self)
        if f is None:
            return None
        if label == "manipulated":
            return M("summary.manipulated.c2pa")
        if label == "ai_generated":
            if f.state == "trusted":
                return M("summary.ai.c2pa.trusted", who=_who(f))
            return M("summary.ai.c2pa.untrusted")
        if label == "authentic":
            return M("summary.authentic", who=_who(f))
        return None

    def inconclusive_why(self, f: C2paFinding) -> Msg:
        if f.state == "absent":
            return M("why.absent")
        if f.state in ("error", "valid", "invalid"):
            return M(f"why.{f.state}")
        return M("why.other")
