"""Liveness (``/healthz``) and readiness (``/readyz``)."""

from __future__ import annotations

import os
import tempfile

from flask import Blueprint, Flask, Response, jsonify

from provenance import c2pa as c2pa_mod
from service.web.context import state
from service.web.openapi import Answer, Health, Operation, Ready, documented

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@documented(Operation("healthz", "Liveness", answers={200: Answer("the process is up", Health)}))
def healthz() -> Response:
    """The process is up."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@documented(
    Operation(
        "readyz",
        "Readiness",
        answers={
            200: Answer("ready to analyse", Ready),
            503: Answer("not ready; `checks` says why", Ready),
        },
    )
)
def readyz() -> tuple[Response, int]:
    """The service can analyse: the C2PA library answers and uploads can be stored."""
    st = state()
    checks: dict[str, dict[str, object]] = {}
    try:
        checks["c2pa"] = {"ok": True, "sdk": c2pa_mod.sdk_version()}
    except Exception as exc:
        checks["c2pa"] = {"ok": False, "error": str(exc)}
    try:
        fd, name = tempfile.mkstemp(dir=st.upload_dir, prefix=".ready-")
        os.close(fd)
        os.unlink(name)
        checks["storage"] = {"ok": True}
    except OSError as exc:
        checks["storage"] = {"ok": False, "error": exc.strerror or str(exc)}
    trust = st.options.trust
    checks["trust"] = {
        "ok": True,
        "anchors": len(trust.anchors),
        "allowed_ekus": list(trust.allowed_ekus) if trust.allowed_ekus is not None else "sdk",
        "remote_manifest_fetch": trust.remote_manifest_fetch,
        "ocsp_fetch": trust.ocsp_fetch,
    }
    dets = st.options.detectors
    checks["detectors"] = {
        "ok": True,  # a disabled detector degrades reports; it does not make the service unready
        "loaded": sorted(dets.model_versions()),
        "disabled": dict(dets.disabled),
    }
    ready = all(bool(c["ok"]) for c in checks.values())
    body: dict[str, object] = {"status": "ready" if ready else "not_ready"}
    if not st.keys_required or _caller_has_key():
        # Versions, trust settings and detector names help an operator; an anonymous caller
        # of a keyed server learns only whether it is ready.
        body["checks"] = checks
    return jsonify(body), (200 if ready else 503)


def _caller_has_key() -> bool:
    from service.web.access import presented_key

    key = presented_key()
    return key is not None and state().store.keys.check_key(key) is not None


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
