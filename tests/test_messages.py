"""English and Japanese wording: complete catalogues, negotiation, API and CLI."""

from __future__ import annotations

import string
import tomllib

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from service.cli import main
from service.messages import (
    CATALOG,
    CLI_TEXT,
    LANGUAGES,
    LOCALES,
    PAGE_TEXT,
    M,
    negotiate,
    render,
)
from service.signals import Findings
from service.verdict import fuse
from tests.conftest import CA, sample
from tests.test_verdict import CASES, MULTI

UNTRANSLATED = {"raw", "who.quoted", "join.1"}  # language-neutral templates


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_language_has_every_message_with_the_same_fields(lang: str) -> None:
    en, other = CATALOG["en"], CATALOG[lang]
    missing = set(en) - set(other) - UNTRANSLATED
    assert not missing, sorted(missing)
    for key, template in other.items():
        assert key in en, key
        assert fields(template) == fields(en[key]), key
    raw = tomllib.loads((LOCALES / f"{lang}.toml").read_text(encoding="utf-8"))
    for part, english in (("page", PAGE_TEXT["en"]), ("cli", CLI_TEXT["en"])):
        assert set(raw[part]) == set(english), f"every {part} text is translated"
        for key, template in raw[part].items():
            assert fields(template) == fields(english[key]), key


def test_languages_are_the_catalogue_files() -> None:
    assert LANGUAGES[0] == "en"
    assert set(LANGUAGES) == {p.stem for p in LOCALES.glob("*.toml")} == {"en", "ja"}


@pytest.mark.parametrize(
    ("query", "header", "expected"),
    [
        ("ja", None, "ja"),
        ("JA", "en", "ja"),
        (None, "ja-JP,ja;q=0.9,en;q=0.8", "ja"),
        (None, "en-GB,en;q=0.9,ja;q=0.5", "en"),
        (None, "fr-FR,de;q=0.9", "en"),
        ("xx", "ja", "ja"),
        (None, "ja;q=0", "en"),
        (None, None, "en"),
    ],
)
def test_language_negotiation(query: str | None, header: str | None, expected: str) -> None:
    assert negotiate(query, header) == expected


def test_nested_messages_render_per_language() -> None:
    msg = M("summary.inconclusive", why=M("why.absent"))
    assert render(msg, "en").startswith("We cannot tell")
    assert render(msg, "ja").startswith("このファイルが本物かどうかは判断できません")


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_every_rule_table_case_renders(lang: str) -> None:
    findings = [Findings.of(c2pa=c.c2pa) for c in CASES] + [c.findings for c in MULTI]
    for f in findings:
        v = fuse(f, lang)
        assert v.language == lang
        assert v.summary
        assert all(r.detail for r in v.reasons)
        if lang == "ja":
            assert any("\u3040" <= ch <= "\u30ff" for ch in v.summary)  # kana present


def test_api_language_by_query_and_header(client: FlaskClient) -> None:
    data = sample("tampered.jpg").read_bytes()
    ja = client.post("/v1/verify?lang=ja", data=data)
    body = ja.get_json()
    assert body["language"] == "ja"
    assert body["verdict"]["summary"].startswith("このファイルは署名後に変更されています")
    assert ja.headers["Content-Language"] == "ja"
    by_header = client.post("/v1/verify", data=data, headers={"Accept-Language": "ja-JP"})
    assert by_header.get_json()["language"] == "ja"
    en = client.post("/v1/verify", data=data).get_json()
    assert en["language"] == "en"
    assert en["verdict"]["label"] == body["verdict"]["label"] == "manipulated"


def test_cli_language() -> None:
    result = CliRunner().invoke(
        main,
        [
            "verify",
            "--lang",
            "ja",
            "--trust-anchors",
            str(CA / "root.pem"),
            str(sample("camera_capture.jpg")),
        ],
    )
    assert result.exit_code == 0
    assert "信頼できる署名者" in result.stdout
    # The field names come from the catalogue too, aligned by terminal columns.
    assert "\n  判定       authentic（確信度 high、根拠: c2pa）" in result.stdout  # noqa: RUF001
    assert "\n  検証失敗   なし" in result.stdout
    assert "verdict" not in result.stdout
