"""Refusals of the application layer, by kind; the web layer maps each code to an HTTP status
(``service/web/errors.py``) and the CLI to a one-line message."""

from __future__ import annotations

from provenance.errors import ShinganError


class Refused(ShinganError):
    """The request is refused; ``code`` says why (a stable name, as in the API's errors)."""

    code = "bad_request"


class BadRequest(Refused):
    code = "bad_request"


class Forbidden(Refused):
    code = "forbidden"


class NotFound(Refused):
    code = "not_found"


class Conflict(Refused):
    code = "conflict"


class TooLarge(Refused):
    code = "too_large"
