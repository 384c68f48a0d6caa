"""The README's settings table is the one the declarations in service/config.py generate."""

from __future__ import annotations

import re
from pathlib import Path

from service.config import Config, settings_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_table_is_generated_from_the_declarations() -> None:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- settings:[^\n]*-->\n(.*?)<!-- /settings -->", text, re.S)
    assert found, "README.md lost its <!-- settings --> markers"
    assert found.group(1) == settings_table(), "run: python -m service.config, paste into README"


def test_every_setting_is_described_and_named_in_the_table() -> None:
    table = settings_table()
    for key, info in Config.model_fields.items():
        assert info.description, f"{key} has no description"
        assert f"`SHINGAN_{key.upper()}`" in table
