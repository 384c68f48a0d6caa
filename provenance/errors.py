"""The root of every error Shingan raises on purpose.

Every layer's errors derive from :class:`ShinganError`, so a caller can catch "anything Shingan
refused" in one clause, and each carries a stable machine-readable ``code`` beside its
``message`` for people. It lives in the lowest layer because every layer must be able to import
it (``provenance`` < ``detectors`` < ``service``, docs/design.md). Nothing below the web layer
knows about HTTP: ``service/web/errors.py`` maps errors to statuses.
"""

from __future__ import annotations


class ShinganError(Exception):
    """An error with a stable ``code`` (a class default, or given) and a ``message``."""

    code = "error"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
