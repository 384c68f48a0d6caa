"""Shared fixtures. Project samples live in samples/; third-party fixtures in ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from provenance.trust import TrustConfig, build_trust
from service.web import create_app

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
CA = SAMPLES / "ca"
SHARED = ROOT.parent / "shared"
FIXTURES = SHARED / "fixtures"
C2PA_FIXTURES = FIXTURES / "c2pa"

SHARED_REASON = (
    "third-party fixtures not found at ../shared/fixtures (they are not part of a fresh clone; "
    "CI provides them)"
)


def shared_path(*parts: str) -> Path:
    """A path under ../shared/fixtures, skipping the test when the folder is absent."""
    path = FIXTURES.joinpath(*parts)
    if not FIXTURES.is_dir():
        pytest.skip(SHARED_REASON)
    return path


def sample(name: str) -> Path:
    return SAMPLES / name


@pytest.fixture(scope="session")
def no_anchors() -> TrustConfig:
    return build_trust()


@pytest.fixture(scope="session")
def test_ca_trust() -> TrustConfig:
    return build_trust(anchors=[CA / "root.pem"])


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return create_app({"data_dir": str(tmp_path / "data"), "trust_anchors": [str(CA / "root.pem")]})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
