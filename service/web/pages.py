"""Pages beyond the single check: sign-in with an API key, batches, known-media banks, stored
reports. Server-rendered like :mod:`service.web.ui` (same text tables, CSRF tokens and escaping);
no script is needed: a running batch's page refreshes itself until the batch is done.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    redirect,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from service.banks import LABELS
from service.web import downloads
from service.web.access import actor, viewer
from service.web.banks_api import add_files
from service.web.batches import owned_batch, start_batch
from service.web.context import state
from service.web.errors import ApiError
from service.web.rendering import (
    UI_TEXT,
    check_csrf,
    csrf_token,
    lang,
    page,
    render_print,
    render_report,
)

bp = Blueprint("pages", __name__)

ITEMS_SHOWN = 500  # a page lists this many items; the downloads hold them all


def _page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return page(template, lang(), csrf=csrf_token(), **context), status


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, no '//' or '\\' tricks)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return url_for("ui.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("ui.index")
    return target


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> tuple[str, int] | BaseResponse:
    error = None
    if request.method == "POST":
        check_csrf()
        key = state().keys().sign_in((request.form.get("key") or "").strip()[:200])
        if key is not None:
            session.clear()
            session["key_name"] = key.name
            return redirect(_safe_next(request.form.get("next")), 303)
        error = UI_TEXT[lang()]["bad_key"]
    return _page(
        "signin.html",
        401 if error else 200,
        error=error,
        next=_safe_next(request.values.get("next")),
    )


@bp.post("/signout")
def signout() -> BaseResponse:
    check_csrf()
    session.clear()
    return redirect(url_for("ui.index"), 303)


@bp.get("/batch")
def batch_form() -> tuple[str, int]:
    return _page("batch_new.html", max_files=state().config.max_batch_files)


@bp.post("/batch")
def batch_create() -> BaseResponse:
    check_csrf()
    uploads = [u for u in request.files.getlist("file") if u.filename]
    if not uploads:
        raise ApiError(400, "missing_file", UI_TEXT[lang()]["choose_first"])
    files = [(u.filename or f"file-{i}", u.stream) for i, u in enumerate(uploads)]
    started = start_batch(files, lang())
    return redirect(url_for("pages.batch_show", batch_id=started.batch.id, lang=lang()), 303)


@bp.get("/batch/<batch_id>")
def batch_show(batch_id: str) -> tuple[str, int]:
    batch = owned_batch(batch_id)
    items = state().store.batches.batch_items(batch_id, 0, ITEMS_SHOWN)
    return _page("batch.html", b=batch, items=items, shown=ITEMS_SHOWN)


@bp.get("/batch/<batch_id>/results.<kind>")
def batch_results(batch_id: str, kind: str) -> Response:
    if kind not in ("csv", "jsonl"):
        abort(404)
    return downloads.batch_results(batch_id, kind)


@bp.get("/reports/<report_id>")
def report(report_id: str) -> str:
    return render_report(state().reports().get(report_id, viewer()), lang())


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> str:
    """A verification running in the background: its progress until done, then its report."""
    code = lang()
    st = state()
    found = st.jobs.get(job_id, viewer())
    if found.status == "done" and found.report_id:
        data = st.reports().get(found.report_id, viewer())
        return render_report(data, code, found.pictures)
    return page("job.html", code, job=found, csrf=csrf_token())


@bp.post("/jobs/<job_id>/cancel")
def job_cancel(job_id: str) -> BaseResponse:
    check_csrf()
    state().jobs.cancel(job_id, viewer())
    return redirect(url_for("pages.job", job_id=job_id, lang=lang()), 303)


@bp.get("/reports/<report_id>/print")
def report_print(report_id: str) -> str:
    return render_print(state().reports().get(report_id, viewer()), lang())


@bp.get("/banks")
def banks() -> tuple[str, int]:
    return _banks_page()


def _banks_page(
    message: str | None = None, errors: list[dict[str, str]] | None = None
) -> tuple[str, int]:
    banks = state().store.banks.list_banks(viewer())
    return _page("banks.html", banks=banks, labels=LABELS, message=message, errors=errors)


@bp.post("/banks")
def banks_create() -> tuple[str, int]:
    check_csrf()
    name = state().banks().create(request.form, actor(), viewer())
    return _banks_page(UI_TEXT[lang()]["bank_created"].format(bank=name))


@bp.post("/banks/entries")
def banks_add() -> tuple[str, int]:
    check_csrf()
    name = request.form.get("bank") or ""
    uploads = [u for u in request.files.getlist("file") if u.filename]
    if not uploads:
        raise ApiError(400, "missing_file", UI_TEXT[lang()]["choose_first"])
    added, errors = add_files(name, uploads)
    return _banks_page(UI_TEXT[lang()]["added"].format(n=added, bank=name), errors)


@bp.get("/banks/<name>.csv")
def bank_csv(name: str) -> Response:
    return downloads.bank_csv(name)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
