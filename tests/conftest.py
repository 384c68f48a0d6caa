"""Shared fixtures. Project samples live in samples/; third-party fixtures in ../shared."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[Flask]:
    """An app that requires API keys (as when listening beyond loopback)."""
    app = create_app({"data_dir": str(tmp_path / "data"), "api_keys": "required"})
    yield app
    app.extensions["shingan"].runner.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def running_server(data_dir: Path, **env: str) -> Iterator[str]:
    """A real ``shingan serve`` on a free loopback port; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env={**os.environ, "SHINGAN_DATA_DIR": str(data_dir), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("shingan serve did not start")
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


#: Reports made during the test session, each validated against docs/report.schema.json.
REPORTS_CHECKED: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def every_report_matches_the_schema() -> Iterator[None]:
    """Every report any test makes in this process (``Report.to_dict``) is validated against
    the committed schema; a report that does not match fails the test that made it."""
    import json

    from jsonschema import Draft202012Validator

    from service.report import Report

    schema = json.loads((ROOT / "docs" / "report.schema.json").read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema)
    original = Report.to_dict

    def checked(self: Report) -> dict[str, Any]:
        data = original(self)
        errors = sorted(validator.iter_errors(data), key=lambda e: str(list(e.absolute_path)))
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path)
            message = f"report does not match the schema at {where}: {errors[0].message}"
            raise AssertionError(message)
        REPORTS_CHECKED.append(data["id"])
        return data

    Report.to_dict = checked  # type: ignore[method-assign]
    try:
        yield
    finally:
        Report.to_dict = original  # type: ignore[method-assign]
