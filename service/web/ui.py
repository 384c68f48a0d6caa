"""``/``: the fact-checker's page. Server-rendered, no inline script, every file string escaped.

The page posts a file with a CSRF token; the report is rendered from the same ``analyze`` and
the same report JSON the API returns, with C2PA thumbnails and forensic maps included.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, abort, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from provenance.media import MediaError, check_type
from service.web import previews
from service.web.access import actor
from service.web.context import received_upload, state
from service.web.counters import count_verdict
from service.web.rendering import (
    UI_TEXT,
    check_csrf,
    csrf_token,
    error_page,
    lang,
    page,
    render_report,
)

bp = Blueprint("ui", __name__)


@bp.get("/")
def index() -> str:
    code = lang()
    return page("index.html", code, csrf=csrf_token())


@bp.post("/report")
def report() -> str | tuple[str, int] | BaseResponse:
    check_csrf()
    code = lang()
    st = state()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return error_page(code, 400, UI_TEXT[code]["choose_first"])
    try:
        with received_upload(upload.stream, "ui-") as (tmp, _):
            if check_type(tmp).kind == "video":
                # Videos take seconds to minutes: a job, with progress and a URL to come back to.
                job = st.jobs.submit(
                    tmp,
                    caller=actor(),
                    audit_as=f"web:{actor()}",  # as the page's direct uploads are
                    filename=upload.filename,
                    pictures=True,
                    language=code,
                    thumbnails=True,
                    forensics=False,
                )
                return redirect(url_for("pages.job", job_id=job.id, lang=code), 303)
            done = st.verifier().verify(
                tmp,
                caller=actor(),
                audit_as=f"web:{actor()}",
                filename=upload.filename,
                language=code,
                thumbnails=True,
                forensics=True,
            )
            pictures = previews.for_upload(tmp, done.data)  # before the upload is deleted
    except MediaError as exc:
        status = {"too_large": 413, "unsupported_media_type": 415, "empty_media": 400}
        return error_page(code, status.get(exc.code, 422), exc.message, exc.code)
    data = done.data
    count_verdict(st.metrics, data)
    return render_report(data, code, pictures)


@bp.get("/models/<name>")
def model_card(name: str) -> str:
    code = lang()
    detector = next((d for d in state().options.detectors.detectors if d.card.name == name), None)
    if detector is None:
        abort(404)
    card = detector.card
    return page(
        "card.html",
        code,
        card=card,
        files=[(f.role, f.path.name, f.sha256) for f in card.files],
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.context_processor
    def _helpers() -> dict[str, Any]:
        return {"url_for": url_for, "csrf_token": csrf_token}

    @app.after_request
    def _csp(response: Response) -> Response:
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        )
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response
