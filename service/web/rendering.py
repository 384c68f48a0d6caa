"""Rendering shared by the pages: their text in each language, CSRF tokens, the report page and
error pages. Imports nothing of the blueprints, so any of them (and the error handlers) can use it.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from typing import Any

from flask import abort, render_template, request, session

from service.messages import LANGUAGES, PAGE_TEXT, negotiate

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
        abort(400, description="the form expired or came from another site; reload the page")


def page(template: str, code: str, **context: Any) -> str:
    """A page in language ``code``: its text table, language and the other language's link are
    filled in; ``context`` adds the rest (``csrf=csrf_token()`` for pages with a form)."""
    return render_template(template, t=UI_TEXT[code], lang=code, other=other(code), **context)


def render_report(data: dict[str, Any], code: str) -> str:
    """The report page for a report dict (fresh, or kept in the store)."""
    raw = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    json_href = "data:application/json;base64," + base64.b64encode(raw).decode("ascii")
    return page(
        "report.html",
        code,
        r=data,
        json_href=json_href,
        json_name=f"shingan-{data['media']['sha256'][:12]}.json",
        chart=timeline_chart(data),
        csrf=csrf_token(),
    )


CHART_W, CHART_H, PAD = 600.0, 140.0, 20.0


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
        "series": series,
        "thresholds": thresholds,
        "faces": faces,
        "end": round(end, 1),
    }


def other(code: str) -> str:
    return next(c for c in LANGUAGES if c != code)


def html_error(status: int, message: str) -> tuple[str, int]:
    return error_page(lang(), status, message)


def error_page(code: str, status: int, message: str) -> tuple[str, int]:
    return page("error.html", code, message=message), status
