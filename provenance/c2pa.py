"""C2PA Content Credentials verification through c2pa-python.

:func:`verify_c2pa` reads and validates the manifest store of one file and returns a frozen
:class:`C2paFinding`. It never raises for bad input: a file without a manifest is ``absent``, one
the SDK cannot process is ``error``.

States (``shingan.report/1``):

``absent``   no manifest in the file (or the format cannot carry one);
``invalid``  a manifest whose validation failed: tampering (hash or signature mismatch) *or* a
             credential problem (expired, missing EKU); :attr:`C2paFinding.integrity_failures`
             and :attr:`C2paFinding.credential_failures` tell the two apart;
``valid``    intact and correctly signed, but the signer is not on a configured trust list;
``trusted``  intact, correctly signed, and the signer chains to a configured anchor;
``error``    the SDK could not process the manifest (malformed, unsupported, remote-only).

Safety: contexts are built per thread from an immutable :class:`~provenance.trust.TrustConfig`
(c2pa objects must not cross threads), and remote manifest fetching and OCSP are off unless the
configuration turns them on, so a crafted file cannot make the server issue requests.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Literal

import c2pa

from provenance.errors import ShinganError
from provenance.source_types import AI_SOURCE_TYPES
from provenance.trust import TrustConfig

log = logging.getLogger(__name__)

C2paState = Literal["absent", "invalid", "valid", "trusted", "error"]

#: Source types that declare a capture by a device.
CAPTURE_SOURCE_TYPES = frozenset(
    {"digitalCapture", "computationalCapture", "negativeFilm", "positiveFilm", "print"}
)

_MAX_DEPTH = 16  # ingredient nesting guard (a crafted store can reference itself)
# A crafted store can hold thousands of entries; reports stay bounded.
_MAX_ITEMS = 256  # ingredients per level, actions per manifest
_MAX_STATUS = 2000
_MAX_TEXT = 1000  # bound every string copied out of a manifest
_MAX_THUMBNAIL = 512 * 1024
_THUMBNAIL_MIMES = {"image/jpeg", "image/png", "image/webp", "image/gif", "image/avif"}

# Credential problems lower trust; they are not evidence that the content changed.
_CREDENTIAL_PREFIXES = ("signingCredential.", "timeStamp.", "algorithm.")
# Evidence that the bytes, the claim or its assertions changed after signing.
_INTEGRITY_CODES = frozenset(
    {
        "claimSignature.missing",
        "assertion.missing",
        "assertion.inaccessible",
        "assertion.dataHash.malformed",
        "assertion.bmffHash.malformed",
        "assertion.boxesHash.unknownBox",
        "claim.hardBindings.missing",
        "manifest.inaccessible",
    }
)


def classify_code(code: str) -> Literal["integrity", "credential", "other"]:
    """Sort a C2PA failure code: tampering evidence, a credential problem, or something else."""
    if code.startswith(_CREDENTIAL_PREFIXES):
        return "credential"
    if code.endswith(".mismatch") or code in _INTEGRITY_CODES:
        return "integrity"
    return "other"


@dataclass(frozen=True)
class StatusEntry:
    """One validation status from the SDK. ``scope`` is ``active`` or ``ingredient``."""

    code: str
    kind: Literal["success", "informational", "failure"]
    explanation: str
    scope: Literal["active", "ingredient"]
    url: str = ""


@dataclass(frozen=True)
class Codes:
    """Status codes by kind. Ingredient codes carry the prefix ``ingr:``."""

    success: tuple[str, ...] = ()
    informational: tuple[str, ...] = ()
    failure: tuple[str, ...] = ()


@dataclass(frozen=True)
class Signer:
    common_name: str | None = None
    organization: str | None = None
    issuer: str | None = None
    issuer_organization: str | None = None
    serial: str | None = None
    algorithm: str | None = None
    not_before: str | None = None
    not_after: str | None = None


@dataclass(frozen=True)
class Timestamp:
    authority: str | None
    time: str | None
    trusted: bool


@dataclass(frozen=True)
class Action:
    action: str
    software_agent: str | None = None
    digital_source_type: str | None = None
    when: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class AiDeclaration:
    """Where a generative-AI digital source type was declared."""

    digital_source_type: str
    where: str  # e.g. "active manifest, action c2pa.created" or "ingredient 'a.png'"


@dataclass(frozen=True)
class Ingredient:
    title: str | None
    format: str | None
    relationship: str | None
    manifest_label: str | None
    has_manifest: bool
    claim_generator: str | None = None
    signer: str | None = None
    digital_source_type: str | None = None
    ai_declared: bool = False
    failures: tuple[str, ...] = ()
    thumbnail: str | None = None  # data: URI, only when thumbnails were requested
    ingredients: tuple[Ingredient, ...] = ()


@dataclass(frozen=True)
class C2paFinding:
    state: C2paState
    ai_declared: bool = False
    digital_source_type: str | None = None
    ai_declarations: tuple[AiDeclaration, ...] = ()
    claim_generator: str | None = None
    title: str | None = None
    format: str | None = None
    manifest_label: str | None = None
    signer: Signer | None = None
    signed_at: str | None = None
    timestamp: Timestamp | None = None
    actions: tuple[Action, ...] = ()
    ingredients: tuple[Ingredient, ...] = ()
    codes: Codes = field(default_factory=Codes)
    status: tuple[StatusEntry, ...] = ()
    integrity_failures: tuple[str, ...] = ()
    credential_failures: tuple[str, ...] = ()
    other_failures: tuple[str, ...] = ()
    ingredient_failures: tuple[str, ...] = ()
    thumbnail: str | None = None
    remote_url: str | None = None
    error: str | None = None
    sdk_state: str | None = None
    sidecar: bool = False  # validated against a separate manifest file (``.c2pa``)

    @property
    def capture_declared(self) -> bool:
        """The active manifest declares a device capture as the source."""
        return any(a.digital_source_type in CAPTURE_SOURCE_TYPES for a in self.actions)


_SDK_STATES: dict[str, C2paState] = {"Trusted": "trusted", "Valid": "valid", "Invalid": "invalid"}

# --- contexts ------------------------------------------------------------------------------

_local = threading.local()


def _context(trust: TrustConfig) -> Any:
    """The calling thread's c2pa Context for ``trust`` (built once per thread and process)."""
    cache: dict[str, tuple[int, Any]] | None = getattr(_local, "contexts", None)
    if cache is None:
        cache = {}
        _local.contexts = cache
    key = trust.fingerprint()
    entry = cache.get(key)
    if entry is None or entry[0] != os.getpid():
        ctx = c2pa.Context.from_dict(trust.settings())
        cache[key] = (os.getpid(), ctx)
        return ctx
    return entry[1]


def sdk_version() -> str:
    """The c2pa-rs version behind c2pa-python."""
    return str(c2pa.sdk_version())


_SUPPORTED: frozenset[str] | None = None


def supports(mime: str) -> bool:
    """Whether the SDK can look for a manifest in this MIME type."""
    global _SUPPORTED
    if _SUPPORTED is None:
        _SUPPORTED = frozenset(c2pa.Reader.get_supported_mime_types())
    return mime in _SUPPORTED


# --- verification ----------------------------------------------------------------------------


#: A sidecar manifest store larger than this is refused (thumbnails make a few MB at most).
SIDECAR_MAX_BYTES = 32 * 1024 * 1024


class SidecarError(ShinganError):
    """A sidecar manifest that cannot be used: too large, empty or unreadable."""

    code = "bad_manifest"


def find_sidecar(asset: Path) -> Path | None:
    """The sidecar manifest beside ``asset``, as C2PA tools name it: ``photo.c2pa`` or
    ``photo.jpg.c2pa``."""
    for candidate in (asset.with_suffix(".c2pa"), asset.with_name(asset.name + ".c2pa")):
        if candidate != asset and candidate.is_file():
            return candidate
    return None


def read_sidecar(path: Path) -> bytes:
    """A sidecar manifest's bytes, bounded.

    Raises:
        SidecarError: empty, over :data:`SIDECAR_MAX_BYTES`, or unreadable.
    """
    try:
        with path.open("rb") as fh:
            data = fh.read(SIDECAR_MAX_BYTES + 1)
    except OSError as exc:
        raise SidecarError(f"the manifest file cannot be read: {exc.strerror or exc}") from exc
    return checked_sidecar(data)


def checked_sidecar(data: bytes) -> bytes:
    """Raises: SidecarError when ``data`` is empty or over :data:`SIDECAR_MAX_BYTES`."""
    if not data:
        raise SidecarError("the manifest file is empty")
    if len(data) > SIDECAR_MAX_BYTES:
        raise SidecarError(f"the manifest file is over {SIDECAR_MAX_BYTES // 2**20} MiB")
    return data


def verify_c2pa(
    stream: BinaryIO,
    mime: str | None,
    trust: TrustConfig,
    *,
    include_thumbnails: bool = False,
    manifest: bytes | None = None,
) -> C2paFinding:
    """Validate the C2PA manifest store of one asset.

    Args:
        stream: the asset, opened for binary reading and seekable.
        mime: the sniffed MIME type (never the client's claim); ``None`` lets the SDK detect it.
        trust: anchors and policies for this verification.
        include_thumbnails: copy manifest and ingredient thumbnails into the finding as
            ``data:`` URIs (bounded in size).
        manifest: a sidecar manifest store (a ``.c2pa`` file's bytes) to validate the asset
            against, instead of one embedded in it.

    Returns:
        A :class:`C2paFinding`; never raises for malformed input.
    """
    if mime is not None and not supports(mime):
        return C2paFinding(state="absent", error=f"C2PA is not defined for {mime} files")
    try:
        reader = c2pa.Reader(mime, stream, manifest, _context(trust))
    except c2pa.C2paError.ManifestNotFound:
        return C2paFinding(state="absent")
    except c2pa.C2paError as exc:
        return _error_finding(exc)
    except Exception as exc:  # the binding can raise plain errors on hostile input
        log.warning("c2pa reader failed unexpectedly: %s", exc)
        return C2paFinding(state="error", error=_clip(f"{type(exc).__name__}: {exc}"))
    try:
        with reader:
            finding = _finding_from_reader(reader, include_thumbnails)
            return replace(finding, sidecar=True) if manifest is not None else finding
    except Exception as exc:
        log.warning("c2pa manifest could not be interpreted: %s", exc)
        return C2paFinding(state="error", error=_clip(f"manifest could not be interpreted: {exc}"))


def _error_finding(exc: Exception) -> C2paFinding:
    message = str(exc)
    remote_url = None
    if "remote manifest" in message.lower():
        found = re.search(r"https?://\S+", message)
        remote_url = found.group(0) if found else None
        message = (
            "the file refers to a remote manifest, which was not fetched "
            "(remote manifest fetching is off)"
        )
    return C2paFinding(state="error", error=_clip(message), remote_url=_clip_opt(remote_url))


def _finding_from_reader(reader: Any, include_thumbnails: bool) -> C2paFinding:
    store = json.loads(reader.json())
    manifests: dict[str, Any] = store.get("manifests") or {}
    active_label = store.get("active_manifest")
    active = manifests.get(active_label) if isinstance(active_label, str) else None
    sdk_state = reader.get_validation_state() or store.get("validation_state")
    state = _SDK_STATES.get(str(sdk_state), "error")
    status, deltas = _status(store)
    codes = Codes(
        success=tuple(_dedupe(_prefixed(s) for s in status if s.kind == "success")),
        informational=tuple(_dedupe(_prefixed(s) for s in status if s.kind == "informational")),
        failure=tuple(_dedupe(_prefixed(s) for s in status if s.kind == "failure")),
    )
    active_failures = [s.code for s in status if s.kind == "failure" and s.scope == "active"]
    integrity = tuple(_dedupe(c for c in active_failures if classify_code(c) == "integrity"))
    credential = tuple(_dedupe(c for c in active_failures if classify_code(c) == "credential"))
    other = tuple(_dedupe(c for c in active_failures if classify_code(c) == "other"))
    ingr_failures = tuple(
        _dedupe(s.code for s in status if s.kind == "failure" and s.scope == "ingredient")
    )
    if active is None:
        return C2paFinding(
            state="error" if state != "invalid" else state,
            error="the manifest store has no active manifest",
            codes=codes,
            status=status,
            integrity_failures=integrity,
            credential_failures=credential,
            other_failures=other,
            sdk_state=str(sdk_state),
        )

    thumbs = _Thumbnails(reader) if include_thumbnails else None
    actions = tuple(_actions(active))
    declarations: list[AiDeclaration] = []
    for action in actions:
        if action.digital_source_type in AI_SOURCE_TYPES:
            declarations.append(
                AiDeclaration(action.digital_source_type, f"active manifest, {action.action}")
            )
    for dst in _source_types_in_assertions(active, skip_actions=True):
        if dst in AI_SOURCE_TYPES:
            declarations.append(AiDeclaration(dst, "active manifest, metadata assertion"))
    ingredients = tuple(
        _ingredient(i, manifests, deltas, active_label or "", thumbs, declarations, depth=1)
        for i in (active.get("ingredients") or [])[:_MAX_ITEMS]
        if isinstance(i, dict)
    )
    ingr_failures = tuple(_dedupe([*ingr_failures, *_tree_failures(ingredients)]))
    signer, timestamp = _signature(reader, active_label, active, status)
    dst_primary = declarations[0].digital_source_type if declarations else None
    if dst_primary is None:
        dst_primary = next((a.digital_source_type for a in actions if a.digital_source_type), None)
    sig_info = active.get("signature_info") or {}
    return C2paFinding(
        state=state,
        ai_declared=bool(declarations),
        digital_source_type=dst_primary,
        ai_declarations=tuple(declarations),
        claim_generator=_clip_opt(_claim_generator(active)),
        title=_clip_opt(active.get("title")),
        format=_clip_opt(active.get("format")),
        manifest_label=_clip_opt(active_label),
        signer=signer,
        signed_at=_clip_opt(sig_info.get("time")),
        timestamp=timestamp,
        actions=actions,
        ingredients=ingredients,
        codes=codes,
        status=status,
        integrity_failures=integrity,
        credential_failures=credential,
        other_failures=other,
        ingredient_failures=ingr_failures,
        thumbnail=thumbs.get(active.get("thumbnail")) if thumbs else None,
        sdk_state=str(sdk_state),
    )


def _tree_failures(ingredients: Iterable[Ingredient]) -> Iterator[str]:
    for i in ingredients:
        yield from i.failures
        yield from _tree_failures(i.ingredients)


def _prefixed(entry: StatusEntry) -> str:
    return entry.code if entry.scope == "active" else f"ingr:{entry.code}"


def _status(store: Mapping[str, Any]) -> tuple[tuple[StatusEntry, ...], dict[str, list[str]]]:
    """Flatten validation results; also map ingredient assertion URI -> failure codes."""
    entries: list[StatusEntry] = []
    deltas: dict[str, list[str]] = {}
    results = store.get("validation_results")
    if isinstance(results, dict):
        active = results.get("activeManifest") or {}
        for kind in ("success", "informational", "failure"):
            for item in active.get(kind) or []:
                entries.append(_entry(item, kind, "active"))
        for delta in results.get("ingredientDeltas") or []:
            uri = str(delta.get("ingredientAssertionURI", ""))
            vd = delta.get("validationDeltas") or {}
            for kind in ("success", "informational", "failure"):
                for item in vd.get(kind) or []:
                    e = _entry(item, kind, "ingredient")
                    entries.append(e)
                    if kind == "failure":
                        deltas.setdefault(uri, []).append(e.code)
    else:  # older stores only carry a flat failure list
        for item in store.get("validation_status") or []:
            entries.append(_entry(item, "failure", "active"))
    if len(entries) > _MAX_STATUS:
        # Keep every failure; trim the long tail of successes.
        failures = [e for e in entries if e.kind == "failure"][:_MAX_STATUS]
        rest = [e for e in entries if e.kind != "failure"][: _MAX_STATUS - len(failures)]
        entries = failures + rest
    return tuple(entries), deltas


def _entry(item: Any, kind: str, scope: Literal["active", "ingredient"]) -> StatusEntry:
    item = item if isinstance(item, dict) else {}
    return StatusEntry(
        code=_clip(str(item.get("code", "unknown")), 200),
        kind=kind,  # type: ignore[arg-type]
        explanation=_clip(str(item.get("explanation", ""))),
        scope=scope,
        url=_clip(str(item.get("url", ""))),
    )


def _claim_generator(manifest: Mapping[str, Any]) -> str | None:
    gen = manifest.get("claim_generator")
    if isinstance(gen, str) and gen:
        return gen
    infos = manifest.get("claim_generator_info") or []
    parts = []
    for info in infos if isinstance(infos, list) else []:
        if isinstance(info, dict) and info.get("name"):
            version = info.get("version")
            parts.append(f"{info['name']}/{version}" if version else str(info["name"]))
    return " ".join(parts) or None


def _short_source_type(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return _clip(value.rstrip("/").rsplit("/", 1)[-1], 200)


def _actions(manifest: Mapping[str, Any]) -> Iterable[Action]:
    for assertion in manifest.get("assertions") or []:
        if not isinstance(assertion, dict):
            continue
        label = str(assertion.get("label", ""))
        if not label.startswith("c2pa.actions"):
            continue
        data = assertion.get("data") or {}
        for act in (data.get("actions") or [])[:_MAX_ITEMS]:
            if not isinstance(act, dict):
                continue
            agent = act.get("softwareAgent")
            if isinstance(agent, dict):
                agent = agent.get("name")
            yield Action(
                action=_clip(str(act.get("action", "unknown")), 200),
                software_agent=_clip_opt(agent if isinstance(agent, str) else None),
                digital_source_type=_short_source_type(act.get("digitalSourceType")),
                when=_clip_opt(act.get("when") if isinstance(act.get("when"), str) else None),
                description=_clip_opt(
                    act.get("description") if isinstance(act.get("description"), str) else None
                ),
            )


def _source_types_in_assertions(manifest: Mapping[str, Any], *, skip_actions: bool) -> list[str]:
    """Digital source types declared anywhere else in the assertions (e.g. IPTC metadata)."""
    found: list[str] = []

    def walk(node: Any, depth: int) -> None:
        if depth > 12 or len(found) > 32:
            return
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("digitalSourceType", "Iptc4xmpExt:DigitalSourceType"):
                    short = _short_source_type(value)
                    if short:
                        found.append(short)
                else:
                    walk(value, depth + 1)
        elif isinstance(node, list):
            for value in node[:256]:
                walk(value, depth + 1)

    for assertion in manifest.get("assertions") or []:
        if not isinstance(assertion, dict):
            continue
        if skip_actions and str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        walk(assertion.get("data"), 0)
    return found


def _ingredient(
    raw: Mapping[str, Any],
    manifests: Mapping[str, Any],
    deltas: Mapping[str, list[str]],
    parent_label: str,
    thumbs: _Thumbnails | None,
    declarations: list[AiDeclaration],
    depth: int,
    seen: frozenset[str] = frozenset(),
) -> Ingredient:
    title = _clip_opt(raw.get("title") if isinstance(raw.get("title"), str) else None)
    label = raw.get("active_manifest") if isinstance(raw.get("active_manifest"), str) else None
    manifest = manifests.get(label) if label else None
    where = f"ingredient {title!r}" if title else "an ingredient"
    ai_here = False
    dst: str | None = None
    children: tuple[Ingredient, ...] = ()
    claim_generator = signer = None
    if isinstance(manifest, dict) and label not in seen and depth <= _MAX_DEPTH:
        claim_generator = _claim_generator(manifest)
        signer = (manifest.get("signature_info") or {}).get("common_name")
        for action in _actions(manifest):
            if action.digital_source_type:
                dst = dst or action.digital_source_type
            if action.digital_source_type in AI_SOURCE_TYPES:
                dst = action.digital_source_type
                ai_here = True
                declarations.append(
                    AiDeclaration(action.digital_source_type, f"{where}, {action.action}")
                )
        for other in _source_types_in_assertions(manifest, skip_actions=True):
            if other in AI_SOURCE_TYPES:
                ai_here = True
                dst = dst or other
                declarations.append(AiDeclaration(other, f"{where}, metadata assertion"))
        children = tuple(
            _ingredient(
                i,
                manifests,
                deltas,
                label or "",
                thumbs,
                declarations,
                depth + 1,
                seen | {label or ""},
            )
            for i in (manifest.get("ingredients") or [])[:_MAX_ITEMS]
            if isinstance(i, dict)
        )
    # Some writers put the source type on the ingredient itself.
    own = _short_source_type(raw.get("digitalSourceType") or raw.get("digital_source_type"))
    if own:
        dst = dst or own
        if own in AI_SOURCE_TYPES and not ai_here:
            ai_here = True
            declarations.append(AiDeclaration(own, where))
    ingredient_label = str(raw.get("label", ""))
    failures: list[str] = list(_recorded_failures(raw))
    for uri, codes in deltas.items():
        if parent_label and parent_label in uri and uri.endswith(f"/{ingredient_label}"):
            failures.extend(codes)
    thumb_ref = raw.get("thumbnail")
    return Ingredient(
        title=title,
        format=_clip_opt(raw.get("format") if isinstance(raw.get("format"), str) else None),
        relationship=_clip_opt(
            raw.get("relationship") if isinstance(raw.get("relationship"), str) else None
        ),
        manifest_label=_clip_opt(label),
        has_manifest=manifest is not None,
        claim_generator=_clip_opt(claim_generator),
        signer=_clip_opt(signer if isinstance(signer, str) else None),
        digital_source_type=dst,
        ai_declared=ai_here or any(c.ai_declared for c in children),
        failures=tuple(_dedupe(failures)),
        thumbnail=thumbs.get(thumb_ref) if thumbs else None,
        ingredients=children,
    )


#: Endings of C2PA success and informational codes; every other code is a failure.
_NOT_FAILURE = (".validated", ".match", ".trusted", ".insideValidity", ".notRevoked", ".accessible")


def _recorded_failures(raw: Mapping[str, Any]) -> Iterable[str]:
    """The failures the signer's SDK recorded when it took this ingredient in: ``validation_status``
    (C2PA 1.x ingredients) or ``validation_results`` (2.x). They describe the ingredient's own
    manifest as it was then (an ingredient whose signature no longer matched, say), which the
    reader's live validation does not repeat."""
    status = raw.get("validation_status")
    items: list[Any] = list(status) if isinstance(status, list) else []
    results = raw.get("validation_results")
    if isinstance(results, dict):
        active = results.get("activeManifest")
        if isinstance(active, dict) and isinstance(active.get("failure"), list):
            items.extend(active["failure"])
        for delta in results.get("ingredientDeltas") or []:
            if isinstance(delta, dict):
                vd = delta.get("validationDeltas")
                if isinstance(vd, dict) and isinstance(vd.get("failure"), list):
                    items.extend(vd["failure"])
    for item in items[:_MAX_STATUS]:
        code = item.get("code") if isinstance(item, dict) else None
        if isinstance(code, str) and code and not code.endswith(_NOT_FAILURE):
            yield _clip(code, 200)


def _signature(
    reader: Any,
    active_label: Any,
    active: Mapping[str, Any],
    status: tuple[StatusEntry, ...],
) -> tuple[Signer | None, Timestamp | None]:
    """Signer and time-stamp details. The crJSON view carries the certificate subject."""
    info = active.get("signature_info") or {}
    cert: Mapping[str, Any] = {}
    tsa: Mapping[str, Any] = {}
    try:
        cr = json.loads(reader.crjson())
        for m in cr.get("manifests") or []:
            if isinstance(m, dict) and m.get("label") == active_label:
                sig = m.get("signature") or {}
                cert = sig.get("certificateInfo") or {}
                tsa = sig.get("timeStampInfo") or {}
                break
    except Exception as exc:  # crJSON is an extra view; its absence is not an error
        log.debug("crjson unavailable: %s", exc)
    subject = cert.get("subject") or {}
    issuer = cert.get("issuer") or {}
    validity = cert.get("validity") or {}
    if not info and not cert:
        return None, None
    signer = Signer(
        common_name=_clip_opt(subject.get("CN") or info.get("common_name")),
        organization=_clip_opt(subject.get("O")),
        issuer=_clip_opt(issuer.get("CN") or info.get("issuer")),
        issuer_organization=_clip_opt(issuer.get("O") or info.get("issuer")),
        serial=_clip_opt(cert.get("serialNumber") or info.get("cert_serial_number")),
        algorithm=_clip_opt(info.get("alg")),
        not_before=_clip_opt(validity.get("notBefore")),
        not_after=_clip_opt(validity.get("notAfter")),
    )
    timestamp = None
    if tsa:
        tsa_subject = (tsa.get("certificateInfo") or {}).get("subject") or {}
        authority = tsa_subject.get("CN") or tsa_subject.get("O")
        trusted = any(
            s.code == "timeStamp.trusted" and s.scope == "active" and s.kind == "success"
            for s in status
        )
        timestamp = Timestamp(
            authority=_clip_opt(authority),
            time=_clip_opt(tsa.get("timestamp")),
            trusted=trusted,
        )
    return signer, timestamp


class _Thumbnails:
    """Fetches embedded thumbnails from a live reader as bounded ``data:`` URIs."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader

    def get(self, ref: Any) -> str | None:
        if not isinstance(ref, dict):
            return None
        uri, fmt = ref.get("identifier"), ref.get("format")
        if not isinstance(uri, str) or fmt not in _THUMBNAIL_MIMES:
            return None
        buf = io.BytesIO()
        try:
            self._reader.resource_to_stream(uri, buf)
        except Exception as exc:
            log.debug("thumbnail %s unavailable: %s", uri, exc)
            return None
        data = buf.getvalue()
        if not data or len(data) > _MAX_THUMBNAIL:
            return None
        return f"data:{fmt};base64,{base64.b64encode(data).decode('ascii')}"


def _clip(text: str, limit: int = _MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip_opt(value: Any) -> str | None:
    if value is None:
        return None
    return _clip(str(value))


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
