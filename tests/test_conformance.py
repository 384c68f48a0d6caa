"""Conformance against third-party C2PA assets in ../shared/fixtures/c2pa.

MANIFEST.tsv records what c2pa-rs reports for each file under four trust configurations. Every
file is run through Shingan's intake (type sniffed from bytes) and C2PA verification with the
same configuration, and the state and failure codes must agree. Skipped, with the reason, when
../shared is absent (a user's fresh clone does not have it).
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass

import pytest

from provenance.c2pa import verify_c2pa
from provenance.media import MediaError, open_media
from provenance.source_types import AI_SOURCE_TYPES
from provenance.trust import TrustConfig, build_trust
from tests.conftest import C2PA_FIXTURES, SHARED_REASON

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not C2PA_FIXTURES.is_dir(), reason=SHARED_REASON),
]

TRUST = C2PA_FIXTURES / "trust"


@dataclass(frozen=True)
class Column:
    state: str
    failures: str | None


COLUMNS = {
    "default": Column("state_default", "failures_default"),
    "c2pa_trust_list": Column("state_C2PA_trust_list", "failures_C2PA_trust_list"),
    "test_anchors_eku": Column("state_with_test_anchors+EKUcfg", None),
    "c2pa_itl_eku": Column("state_C2PA+ITL+EKUcfg", "failures_C2PA+ITL+EKUcfg"),
}


@functools.cache
def trust_for(name: str) -> TrustConfig:
    """The trust configuration each MANIFEST column was recorded with."""
    if name == "default":
        return build_trust(allowed_ekus=None)
    if name == "c2pa_trust_list":
        return build_trust(anchors=[TRUST / "C2PA-TRUST-LIST.pem"], allowed_ekus=None)
    if name == "test_anchors_eku":
        return build_trust(
            anchors=[TRUST / "c2pa-rs_test_cert_root_bundle.pem", TRUST / "ms_test_root_CA.crt"],
            tsa_anchors=[TRUST / "ms_digicert_TSA_CA.pem"],
            allowed_ekus=str(TRUST / "ITL_store.cfg"),
        )
    if name == "c2pa_itl_eku":
        return build_trust(
            anchors=[TRUST / "C2PA-TRUST-LIST.pem", TRUST / "ITL_anchors.pem"],
            allowed_list=[TRUST / "ITL_allowed.pem"],
            allowed_ekus=str(TRUST / "ITL_store.cfg"),
        )
    raise KeyError(name)


def _rows() -> list[dict[str, str]]:
    manifest = C2PA_FIXTURES / "MANIFEST.tsv"
    if not manifest.is_file():
        return []
    with manifest.open(encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh, delimiter="\t") if r["state_default"] != "n/a"]


ROWS = _rows()


def expected_state(recorded: str) -> str:
    if recorded == "EXC:ManifestNotFound":
        return "absent"
    if recorded.startswith("EXC:"):
        return "error"
    return recorded.lower()


def expected_failures(recorded: str) -> set[str]:
    if recorded in ("", "-"):
        return set()
    return set(recorded.split(","))


@pytest.mark.parametrize("config", list(COLUMNS))
@pytest.mark.parametrize("row", ROWS, ids=[r["file"] for r in ROWS])
def test_state_and_failures_match_recorded_c2pa_rs(row: dict[str, str], config: str) -> None:
    path = C2PA_FIXTURES / row["file"]
    column = COLUMNS[config]
    try:
        media = open_media(path)
    except MediaError as exc:  # pragma: no cover - would be a sniffing regression
        pytest.fail(f"intake refused {row['file']}: {exc}")
    with path.open("rb") as fh:
        finding = verify_c2pa(fh, media.mime, trust_for(config))
    want = expected_state(row[column.state])
    assert finding.state == want, f"{row['file']} [{config}]: {finding.error}"
    if column.failures and not row[column.state].startswith("EXC:"):
        assert set(finding.codes.failure) == expected_failures(row[column.failures])


SIGNED = [r for r in ROWS if r["ai_digitalSourceType"]]


@pytest.mark.parametrize("row", SIGNED, ids=[r["file"] for r in SIGNED])
def test_ai_declaration_matches_recorded(row: dict[str, str]) -> None:
    recorded = row["ai_digitalSourceType"]
    path = C2PA_FIXTURES / row["file"]
    with path.open("rb") as fh:
        finding = verify_c2pa(fh, open_media(path).mime, trust_for("default"))
    if recorded.startswith("yes:"):
        # The manifest recorded every declared source type as "yes:<type>"; only the trained
        # ones declare generative AI (IPTC): algorithmicMedia is software-made without
        # training data, and stays the declared type without counting as AI.
        declared = recorded.split(":", 1)[1]
        assert finding.digital_source_type == declared
        assert finding.ai_declared == (declared in AI_SOURCE_TYPES)
    else:
        assert not finding.ai_declared


def test_every_manifest_row_is_covered() -> None:
    files = {r["file"] for r in ROWS}
    on_disk = {
        str(p.relative_to(C2PA_FIXTURES))
        for p in C2PA_FIXTURES.rglob("*")
        if p.is_file() and p.parent.name != "trust" and p.name != "MANIFEST.tsv"
    }
    assert on_disk <= files, f"fixtures without a MANIFEST row: {sorted(on_disk - files)}"
    assert len(files) >= 40
