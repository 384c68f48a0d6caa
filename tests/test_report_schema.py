"""docs/report.schema.json: committed, equal to what the code makes, and checked on every report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from service.contract import rendered_schema as rendered
from service.pipeline import AnalyzeOptions, analyze
from tests.conftest import REPORTS_CHECKED, sample

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "docs" / "report.schema.json"


def test_the_committed_schema_is_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == rendered(), (
        "regenerate: python -m service.contract > docs/report.schema.json"
    )
    Draft202012Validator.check_schema(json.loads(rendered()))


def test_reports_are_checked_against_it_and_a_wrong_one_fails() -> None:
    before = len(REPORTS_CHECKED)
    data = analyze(sample("unsigned.jpg"), AnalyzeOptions()).to_dict()
    assert len(REPORTS_CHECKED) == before + 1  # the session hook saw it
    validator = Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
    assert not list(validator.iter_errors(data))
    broken = {**data, "verdict": {**data["verdict"], "label": "probably_fake"}}
    assert list(validator.iter_errors(broken))


@pytest.mark.parametrize("name", ["tampered.jpg", "signed_video.mp4", "ai_metadata.png"])
def test_samples_match_the_schema(name: str) -> None:
    analyze(sample(name), AnalyzeOptions()).to_dict()  # the session hook validates it
