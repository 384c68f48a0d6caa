"""Trust configuration for C2PA verification.

A :class:`TrustConfig` is an immutable value built once at start-up from PEM/DER files and handed
to every verification; :mod:`provenance.c2pa` turns it into per-thread c2pa ``Context`` objects.
Nothing here is process-global, so two configurations can be verified side by side.

Why the pieces exist:

* **trust anchors**: roots (e.g. the C2PA Trust List) that make a signer ``trusted``;
* **user anchors**: an organisation's own roots, added to the above;
* **TSA anchors**: roots of time-stamp authorities. c2pa-rs checks time-stamp chains against the
  same anchor store as signer chains, so they are merged in; they cannot make a signer trusted
  unless its certificate also carries an allowed signing EKU;
* **allowed list**: individual end-entity certificates accepted as trusted as they are (passed to
  c2pa-rs's ``trust.allowed_list`` unchanged);
* **allowed EKUs**: extended-key-usage OIDs a signing certificate may carry, *in addition to*
  c2pa-rs's built-in ones (emailProtection among them; the SDK cannot be narrowed below those).
  ``None`` keeps only the built-in list, which rejects documentSigning-only signers.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from provenance.defaults import C2PA_SIGNER_EKUS
from provenance.errors import ShinganError

log = logging.getLogger(__name__)

_CERT_SUFFIXES = {".pem", ".crt", ".cer", ".der"}


class TrustConfigError(ShinganError):
    """A trust file cannot be read or holds no usable certificate."""

    code = "trust_config"


@dataclass(frozen=True)
class CertInfo:
    """A short description of one anchor, for `/readyz` and logs."""

    subject: str
    sha256: str
    source: str


@dataclass(frozen=True)
class TrustConfig:
    """Everything c2pa needs to decide trust, as PEM text. Empty means "no anchors"."""

    anchors_pem: str = ""
    user_anchors_pem: str = ""
    tsa_anchors_pem: str = ""
    allowed_list_pem: str = ""
    allowed_ekus: tuple[str, ...] | None = C2PA_SIGNER_EKUS
    remote_manifest_fetch: bool = False
    ocsp_fetch: bool = False
    anchors: tuple[CertInfo, ...] = field(default=(), compare=False)

    @property
    def has_anchors(self) -> bool:
        """True when some root could make a signer ``trusted``."""
        return bool(self.anchors_pem or self.user_anchors_pem or self.allowed_list_pem)

    def settings(self) -> dict[str, Any]:
        """The c2pa ``Settings`` dictionary for this configuration."""
        trust: dict[str, Any] = {}
        anchors = "\n".join(p for p in (self.anchors_pem, self.tsa_anchors_pem) if p)
        if anchors:
            trust["trust_anchors"] = anchors
        if self.user_anchors_pem:
            trust["user_anchors"] = self.user_anchors_pem
        if self.allowed_list_pem:
            trust["allowed_list"] = self.allowed_list_pem
        if self.allowed_ekus is not None:
            trust["trust_config"] = "\n".join(self.allowed_ekus)
        settings: dict[str, Any] = {
            "version": 1,
            "verify": {
                "remote_manifest_fetch": self.remote_manifest_fetch,
                "ocsp_fetch": self.ocsp_fetch,
                "verify_trust": True,
                "verify_timestamp_trust": True,
            },
            # CAWG identity assertions are checked against the same anchors.
            "cawg_trust": {"verify_trust_list": True},
        }
        if trust:
            settings["trust"] = trust
        return settings

    def fingerprint(self) -> str:
        """A stable key for caching per-thread contexts built from this configuration."""
        h = hashlib.sha256()
        for part in (
            self.anchors_pem,
            self.user_anchors_pem,
            self.tsa_anchors_pem,
            self.allowed_list_pem,
            ",".join(self.allowed_ekus) if self.allowed_ekus is not None else "<sdk>",
            str(self.remote_manifest_fetch),
            str(self.ocsp_fetch),
        ):
            h.update(part.encode())
            h.update(b"\0")
        return h.hexdigest()


def load_certificates(paths: Iterable[str | Path]) -> tuple[str, list[CertInfo]]:
    """Read PEM or DER certificates from files and directories (non-recursive).

    Returns the certificates re-encoded as one PEM bundle, and a description of each.

    Raises:
        TrustConfigError: a path is missing, unreadable, or holds no certificate.
    """
    pems: list[str] = []
    infos: list[CertInfo] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in _CERT_SUFFIXES)
            if not files:
                raise TrustConfigError(f"{path}: directory holds no .pem/.crt/.cer/.der file")
        elif path.is_file():
            files = [path]
        else:
            raise TrustConfigError(f"{path}: no such file or directory")
        for file in files:
            for cert in _read_certs(file):
                pems.append(cert.public_bytes(Encoding.PEM).decode("ascii"))
                infos.append(
                    CertInfo(
                        subject=cert.subject.rfc4514_string(),
                        sha256=cert.fingerprint(_sha256()).hex(),
                        source=str(file),
                    )
                )
    return "".join(pems), infos


def _sha256() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


def _read_certs(file: Path) -> list[x509.Certificate]:
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise TrustConfigError(f"{file}: cannot read ({exc.strerror})") from exc
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise TrustConfigError(f"{file}: not a PEM or DER certificate ({exc})") from exc
    if not certs:
        raise TrustConfigError(f"{file}: holds no certificate")
    return certs


def parse_eku_list(text: str) -> tuple[str, ...]:
    """Parse an EKU list: OIDs separated by commas or newlines; ``//`` and ``#`` start comments.

    This accepts the ``store.cfg`` format of the C2PA tools.

    Raises:
        TrustConfigError: an entry is not a dotted OID.
    """
    oids: list[str] = []
    for line in text.replace(",", "\n").splitlines():
        entry = line.split("//", 1)[0].split("#", 1)[0].strip()
        if not entry:
            continue
        parts = entry.split(".")
        if len(parts) < 2 or not all(p.isdigit() for p in parts):
            raise TrustConfigError(f"{entry!r} is not a dotted OID")
        oids.append(entry)
    return tuple(oids)


def build_trust(
    anchors: Sequence[str | Path] = (),
    user_anchors: Sequence[str | Path] = (),
    tsa_anchors: Sequence[str | Path] = (),
    allowed_list: Sequence[str | Path] = (),
    allowed_ekus: Sequence[str] | str | None = C2PA_SIGNER_EKUS,
    *,
    remote_manifest_fetch: bool = False,
    ocsp_fetch: bool = False,
) -> TrustConfig:
    """Build a :class:`TrustConfig` from files.

    ``allowed_ekus`` may be a sequence of OIDs, the text of a ``store.cfg``-style list, a path
    to such a file, or ``None`` for the SDK's built-in list.

    Raises:
        TrustConfigError: on any unreadable or malformed input.
    """
    anchors_pem, a_info = load_certificates(anchors)
    user_pem, u_info = load_certificates(user_anchors)
    tsa_pem, _ = load_certificates(tsa_anchors)
    allowed_pem, l_info = load_certificates(allowed_list)
    ekus: tuple[str, ...] | None
    if allowed_ekus is None:
        ekus = None
    elif isinstance(allowed_ekus, str):
        candidate = Path(allowed_ekus).expanduser()
        if "\n" not in allowed_ekus and candidate.is_file():
            ekus = parse_eku_list(candidate.read_text(encoding="utf-8", errors="replace"))
        else:
            ekus = parse_eku_list(allowed_ekus)
    else:
        ekus = parse_eku_list("\n".join(allowed_ekus))
    config = TrustConfig(
        anchors_pem=anchors_pem,
        user_anchors_pem=user_pem,
        tsa_anchors_pem=tsa_pem,
        allowed_list_pem=allowed_pem,
        allowed_ekus=ekus,
        remote_manifest_fetch=remote_manifest_fetch,
        ocsp_fetch=ocsp_fetch,
        anchors=tuple(a_info + u_info + l_info),
    )
    log.info(
        "trust: %d anchors, %d user anchors, %d allowed certificates, EKUs %s",
        len(a_info),
        len(u_info),
        len(l_info),
        "sdk default" if ekus is None else ",".join(ekus),
    )
    return config
