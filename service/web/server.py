"""``shingan serve``: waitress, with the gate consulted before a request's body is received.

Waitress reads whole requests in its I/O thread before handing them to a worker thread, which
keeps slow clients from holding worker threads but means the application sees a request only
after its body has arrived: a 1 GiB upload without a key would be spooled to disk before the
401. Here the parser asks :class:`service.web.gate.Gate` as soon as the headers are complete; a
refused request is answered at once and its connection closed, so its body is never read, and
``Expect: 100-continue`` is answered only for requests the gate accepts.

Every error waitress itself produces (a malformed request line, a bad ``Content-Length``, a body
over the largest route limit, broken chunked encoding) is answered as JSON
``{"error": {"code", "message"}}``, like the application's own errors; a gate refusal on a
page's path is a short HTML page.
"""

from __future__ import annotations

import functools
import html
import json
import logging
from typing import Any

from flask import Flask
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask
from waitress.utilities import Error

from service.web.gate import Gate, Refusal

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
}


class GateRefused(Error):  # type: ignore[misc]
    """A request the gate refused, as a waitress error (answered, then the connection closed)."""

    def __init__(self, refusal: Refusal, path: str) -> None:
        super().__init__(refusal.message)
        self.code = refusal.status
        self.reason = {
            400: "Bad Request",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not Found",
            405: "Method Not Allowed",
            413: "Content Too Large",
        }.get(refusal.status, "Error")
        self.refusal = refusal
        self.path = path


def error_body(code: str, message: str, page: bool) -> tuple[list[tuple[str, str]], bytes]:
    """The service's JSON error; or, for a page's path, a minimal page a person can read."""
    if not page:
        body = json.dumps({"error": {"code": code, "message": message}}).encode("utf-8")
        return [("Content-Type", "application/json")], body
    text = (
        "<!doctype html><meta charset=utf-8><title>Shingan</title>"
        f"<p>{html.escape(message)}</p><p><a href=/>Shingan</a></p>"
    )
    return [("Content-Type", "text/html; charset=utf-8")], text.encode("utf-8")


def _is_page(path: str) -> bool:
    return path.startswith("/") and not path.startswith(
        ("/v1/", "/metrics", "/healthz", "/readyz", "/static/")
    )


class JsonErrorTask(ErrorTask):  # type: ignore[misc]
    """Answers waitress's own errors and the gate's refusals in the service's error format."""

    def execute(self) -> None:
        error = self.request.error
        if isinstance(error, GateRefused):
            code, message, extra = error.refusal.code, error.refusal.message, error.refusal.headers
            page = _is_page(error.path)
        else:  # waitress's own: the request could not even be parsed, so its path is unknown
            code = _CODES.get(error.code, "http_error")
            message = f"{error.reason}: {error.body}" if error.body else error.reason
            extra, page = (), False
        headers, body = error_body(code, message, page)
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend(headers)
        self.response_headers.extend(extra)
        self.response_headers.append(("X-Content-Type-Options", "nosniff"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class GatedParser(HTTPRequestParser):  # type: ignore[misc]
    """Consults the gate once the headers are complete."""

    def __init__(self, adj: Any, gate: Gate | None = None) -> None:
        super().__init__(adj)
        self.gate = gate
        self.gated = False

    def received(self, data: bytes) -> int:
        consumed: int = super().received(data)
        if self.headers_finished and not self.gated:
            self.gated = True
            if self.error is None and not self.empty and self.gate is not None:
                self._consult(self.gate)
        return consumed

    def _consult(self, gate: Gate) -> None:
        headers = {k.lower().replace("_", "-"): str(v) for k, v in self.headers.items()}
        length = None if self.chunked else int(self.content_length or 0)
        has_body = self.chunked or bool(length)
        try:
            refusal = gate.check(self.command, self.path or "/", headers, has_body, length)
        except Exception:  # the gate must never stop the server; the app checks again
            log.exception("gate failed on %s %s", self.command, self.path)
            return
        if refusal is not None:
            self.error = GateRefused(refusal, self.path or "/")
            self.completed = True
            self.expect_continue = False  # refused: the client must not send the body


class GatedChannel(HTTPChannel):  # type: ignore[misc]
    """A connection whose requests consult ``gate`` (set on a subclass per server)."""

    error_task_class = JsonErrorTask
    gate: Gate | None = None

    def __init__(self, server: Any, sock: Any, addr: Any, adj: Any, map: Any = None) -> None:
        super().__init__(server, sock, addr, adj, map)
        self.parser_class = functools.partial(GatedParser, gate=self.gate)


def _gate_of(app: Any) -> Gate | None:
    state = getattr(app, "extensions", {}).get("shingan")
    return getattr(state, "gate", None)


def make_server(app: Flask, *, host: str, port: int, threads: int, **adjustments: Any) -> Any:
    """A waitress server for ``app`` whose connections consult the app's gate."""
    gate = _gate_of(app)
    largest = gate.limits.largest if gate is not None else 1 << 30
    sockets: dict[int, Any] = {}
    server = create_server(
        app,
        map=sockets,
        host=host,
        port=port,
        threads=threads,
        max_request_body_size=largest + 1,
        ident="shingan",
        **adjustments,
    )
    # waitress may wrap the application (proxy-header middleware): the gate is bound here
    channel = type("ShinganChannel", (GatedChannel,), {"gate": gate})
    for dispatcher in list(sockets.values()):
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = channel
    return server
