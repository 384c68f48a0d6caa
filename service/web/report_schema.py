"""The JSON Schema of a report (``shingan.report/1``), committed as ``docs/report.schema.json``.

    python -m service.web.report_schema > docs/report.schema.json

For now it is cut from the OpenAPI document's components (the ``Report`` schema and every schema
it refers to, as ``$defs``), so the two cannot disagree. ``tests/test_report_schema.py`` checks
that the committed file is what this module makes, and the tests validate every report they
make against it. Outside checks can validate reports without reading the OpenAPI document.
"""

from __future__ import annotations

import json
from typing import Any

from service.report import SCHEMA
from service.web.openapi import openapi_document

_REF = "#/components/schemas/"


def report_schema() -> dict[str, Any]:
    """A standalone JSON Schema (2020-12) for one report."""
    components = openapi_document()["components"]["schemas"]
    needed: dict[str, Any] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and value.startswith(_REF):
                    name = value[len(_REF) :]
                    if name not in needed:
                        needed[name] = None  # placeholder against cycles
                        needed[name] = walk(components[name])
                    out[key] = f"#/$defs/{name}"
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    root = walk(components["Report"])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://shingan.invalid/{SCHEMA}.schema.json",
        "title": SCHEMA,
        **root,
        "$defs": dict(sorted(needed.items())),
    }


def rendered() -> str:
    return json.dumps(report_schema(), indent=1, ensure_ascii=False, sort_keys=False) + "\n"


if __name__ == "__main__":
    print(rendered(), end="")
