"""Words people read: verdict summaries, reasons and the pages' text, in every language.

The words live in one catalogue per language, ``service/locales/<language>.toml`` (tables
``[report]``, ``[page]`` and ``[cli]``), read once; the API, the pages and the CLI all render
from them.

The verdict builds :class:`Msg` values (a key and parameters); :func:`render` turns them into text
in the requested language, falling back to English for any key a language lacks. Parameters
may themselves be messages. Values taken from files (titles, signer names, errors) are passed
as parameters, never as templates, and renderers escape them.

Wording rule: say what the evidence shows and who vouches for it ("the file says it was made
with an AI tool, and the signature is from a trusted signer"), never "fake" or "real".
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: One catalogue per language (``locales/<language>.toml``, package data): adding a language is
#: adding a file.
LOCALES = Path(__file__).resolve().parent / "locales"
DEFAULT_LANGUAGE = "en"
LANGUAGES: tuple[str, ...] = (
    DEFAULT_LANGUAGE,
    *sorted(p.stem for p in LOCALES.glob("*.toml") if p.stem != DEFAULT_LANGUAGE),
)


@dataclass(frozen=True)
class Msg:
    key: str
    params: dict[str, Any] = field(default_factory=dict)


def M(key: str, **params: Any) -> Msg:
    return Msg(key, params)


def negotiate(requested: str | None, accept_language: str | None = None) -> str:
    """Pick a supported language from ``?lang=`` or an Accept-Language header."""
    for candidate in (requested, *_accept(accept_language)):
        if candidate:
            base = candidate.strip().lower().split("-")[0]
            if base in LANGUAGES:
                return base
    return DEFAULT_LANGUAGE


def _accept(header: str | None) -> list[str]:
    if not header:
        return []
    weighted = []
    for part in header.split(","):
        lang, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        weighted.append((weight, lang))
    return [lang for weight, lang in sorted(weighted, key=lambda x: -x[0]) if weight > 0]


def render(msg: Msg | str, lang: str = DEFAULT_LANGUAGE) -> str:
    if isinstance(msg, str):
        return msg
    template = CATALOG.get(lang, {}).get(msg.key) or CATALOG["en"][msg.key]
    params = {k: render(v, lang) if isinstance(v, Msg) else v for k, v in msg.params.items()}
    return template.format(**params)


def _load_catalogues() -> dict[str, dict[str, dict[str, str]]]:
    """Every ``locales/<language>.toml``: its ``[report]``, ``[page]`` and ``[cli]`` tables."""
    out = {}
    for path in sorted(LOCALES.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        out[path.stem] = {part: dict(data.get(part, {})) for part in ("report", "page", "cli")}
    return out


_CATALOGUES = _load_catalogues()
#: Report words by language: summaries and reasons.
CATALOG: dict[str, dict[str, str]] = {lang: c["report"] for lang, c in _CATALOGUES.items()}
#: Page words by language; a key a language lacks is shown in English.
PAGE_TEXT: dict[str, dict[str, str]] = {
    lang: {**_CATALOGUES[DEFAULT_LANGUAGE]["page"], **c["page"]} for lang, c in _CATALOGUES.items()
}
#: The CLI's text summary by language; a key a language lacks is shown in English.
CLI_TEXT: dict[str, dict[str, str]] = {
    lang: {**_CATALOGUES[DEFAULT_LANGUAGE]["cli"], **c["cli"]} for lang, c in _CATALOGUES.items()
}
