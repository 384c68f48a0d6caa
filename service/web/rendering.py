"""Rendering shared by the pages: their text in each language, CSRF tokens, the report page and
error pages. Imports nothing of the blueprints, so any of them (and the error handlers) can use it.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from typing import Any

from flask import render_template, request, session

from detectors.base import NO_FACES
from provenance.errors import ShinganError
from service.app.exports import TO_FINISH, claim_review, headline
from service.messages import DEFAULT_LANGUAGE, LANGUAGES, PAGE_TEXT, negotiate

#: The pages' words by language (``service/locales/<language>.toml``, table ``[page]``).
UI_TEXT: dict[str, dict[str, str]] = PAGE_TEXT


def lang() -> str:
    return negotiate(
        request.args.get("lang") or request.form.get("lang"), request.headers.get("Accept-Language")
    )


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    sent = request.form.get("csrf", "")
    expected = session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        raise FormExpired("the form expired or came from another site; reload the page")


class FormExpired(ShinganError):
    """A form came back without this session's CSRF token."""

    code = "csrf"


def page(template: str, code: str, **context: Any) -> str:
    """A page in language ``code``: its text table, language and the other language's link are
    filled in; ``context`` adds the rest (``csrf=csrf_token()`` for pages with a form)."""
    return render_template(template, t=UI_TEXT[code], lang=code, other=other(code), **context)


def _json_href(value: Any) -> str:
    raw = json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8")
    return "data:application/json;base64," + base64.b64encode(raw).decode("ascii")


def render_report(data: dict[str, Any], code: str, pictures: dict[str, Any] | None = None) -> str:
    """The report page for a report dict (fresh, or kept in the store). ``pictures`` are the
    upload's own (:mod:`service.web.previews`): only a fresh upload has them."""
    v = data["verdict"]
    return page(
        "report.html",
        code,
        r=data,
        headline=headline(v, code),
        json_href=_json_href(data),
        json_name=f"shingan-{data['media']['sha256'][:12]}.json",
        claim_review_href=_json_href(claim_review(data)),
        claim_review_name=f"claimreview-{data['media']['sha256'][:12]}.jsonld",
        to_finish=TO_FINISH,
        chart=timeline_chart(data),
        pictures=pictures or {},
        shown_abstentions=[a for a in data.get("abstentions", []) if a["code"] != "no_faces"],
        other_warnings=_other_warnings(data),
        shown_failures=_shown_failures(data),
        csrf=csrf_token(),
    )


def render_print(data: dict[str, Any], code: str) -> str:
    """The one-page printable report: the verdict, the evidence, the file's hash, time and the
    versions that produced it; no pictures."""
    return page("report_print.html", code, r=data, headline=headline(data["verdict"], code))


def _other_warnings(data: dict[str, Any]) -> list[str]:
    """Warnings that are not abstentions (those are shown by code, in the page's language)."""
    said = {a["message"] for a in data.get("abstentions", [])}
    return [
        w for w in data.get("warnings", []) if w not in said and w != NO_FACES
    ]  # reports made before no_faces left the warnings


def _shown_failures(data: dict[str, Any]) -> list[str]:
    """C2PA failures other than the signer being off the trust list (shown separately, plainly:
    an untrusted signer is a fact about your trust list, not a defect of the file)."""
    failures = data["provenance"]["c2pa"]["codes"]["failure"]
    return [c for c in failures if c != "signingCredential.untrusted"]


CHART_W, CHART_H, PAD = 600.0, 150.0, 28.0


def timeline_chart(report: dict[str, Any]) -> dict[str, Any] | None:
    """Coordinates for an inline SVG chart of frame scores (lines) and faces (bars)."""
    timeline = report.get("timeline") or []
    if len(timeline) < 1:
        return None
    end = max(float(report["media"].get("duration_s") or 0), float(timeline[-1]["time_s"]), 1e-6)

    def x(t: float) -> float:
        return round(PAD + (CHART_W - 2 * PAD) * t / end, 1)

    def y(score: float) -> float:
        return round(CHART_H - PAD - (CHART_H - 2 * PAD) * score, 1)

    # Detectors that scored no frame (a face detector on a faceless clip) draw nothing.
    names = sorted({n for e in timeline for n, v in e["scores"].items() if v is not None})
    series = []
    for n in names:
        pts = [
            (x(e["time_s"]), y(e["scores"][n])) for e in timeline if e["scores"].get(n) is not None
        ]
        series.append({"name": n, "points": " ".join(f"{a},{b}" for a, b in pts), "dots": pts})
    thresholds = [
        {"name": d["name"], "y": y(d["threshold"])}
        for d in report.get("detectors", [])
        if d.get("threshold") is not None and d["name"] in names
    ]
    most = max([e["faces"] or 0 for e in timeline] + [1])
    faces = [
        {"x": x(e["time_s"]) - 2, "h": round((CHART_H - 2 * PAD) * (e["faces"] or 0) / most / 3, 1)}
        for e in timeline
        if e.get("faces")
    ]
    return {
        "w": CHART_W,
        "h": CHART_H,
        "pad": PAD,
        "base": CHART_H - PAD,
        "ticks": [{"y": y(v), "label": f"{v:g}"} for v in (0.0, 0.5, 1.0)],
        "series": series,
        "thresholds": thresholds,
        "faces": faces,
        "end": round(end, 1),
    }


def other(code: str) -> str:
    return next(c for c in LANGUAGES if c != code)


def html_error(status: int, message: str, error: str | None = None) -> tuple[str, int]:
    return error_page(lang(), status, message, error)


def error_page(code: str, status: int, message: str, error: str | None = None) -> tuple[str, int]:
    """An error page in language ``code``. English pages show the precise message; the others
    the catalogue's words for the error's code (``error`` or, failing that, the status), where
    it has them."""
    if code != DEFAULT_LANGUAGE:
        text = UI_TEXT[code]
        message = text.get(f"error.{error}") or text.get(f"error.{status}") or message
    return page("error.html", code, message=message), status
