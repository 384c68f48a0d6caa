"""JSON errors for every failure: ``{"error": {"code", "message"}}``, never an HTML page."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from provenance.errors import ShinganError
from provenance.media import (
    CorruptMedia,
    EmptyMedia,
    MediaError,
    MediaTooLarge,
    TooManyPixels,
    UnsupportedMedia,
)
from service.app.errors import Refused
from service.web.rendering import FormExpired, html_error

log = logging.getLogger(__name__)

_MEDIA_STATUS: dict[type[MediaError], int] = {
    EmptyMedia: 400,
    MediaTooLarge: 413,
    UnsupportedMedia: 415,
    CorruptMedia: 422,
    TooManyPixels: 422,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
}


# The application layer's refusals, by code (service/app/errors.py).
_REFUSED_STATUS = {
    "bad_request": 400,
    "bad_csv": 400,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "too_large": 413,
    "too_many_files": 400,
    "missing_file": 400,
    "bad_webhook": 400,
}

# Blueprints whose answers are pages for people (errors too); the rest answer JSON.
HTML_BLUEPRINTS = frozenset({"ui", "pages"})


class ApiError(ShinganError):
    """An error the API answers with a given status and stable code (the web layer's own)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message, code=code)
        self.status = status


def error_response(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message}}), status


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> tuple[Response | str, int]:
        if request.blueprint in HTML_BLUEPRINTS:
            return html_error(exc.status, exc.message, exc.code)
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(Refused)
    def _refused(exc: Refused) -> tuple[Response | str, int]:
        status = _REFUSED_STATUS.get(exc.code, 400)
        if request.blueprint in HTML_BLUEPRINTS:
            return html_error(status, exc.message, exc.code)
        return error_response(status, exc.code, exc.message)

    @app.errorhandler(FormExpired)
    def _form_expired(exc: FormExpired) -> tuple[Response | str, int]:
        if request.blueprint in HTML_BLUEPRINTS:
            return html_error(400, exc.message, exc.code)
        return error_response(400, exc.code, exc.message)

    @app.errorhandler(MediaError)
    def _media_error(exc: MediaError) -> tuple[Response, int]:
        status = next((s for t, s in _MEDIA_STATUS.items() if isinstance(exc, t)), 422)
        return error_response(status, exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response | str, int]:
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            message = "the upload is larger than this server accepts"
        if request.blueprint in HTML_BLUEPRINTS:  # people get a page, programs get JSON
            return html_error(status, message)
        return error_response(status, _HTTP_CODES.get(status, "http_error"), message)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "the server failed; the error was logged")
