"""What is decided about a request from its head alone, before a byte of its body is read.

:class:`Gate` answers for one request line and its headers: a refusal (status, code, message)
or nothing. It refuses

* a ``Host`` that is not this service's (``allowed_hosts``: DNS rebinding turns a browser on the
  user's machine into a client of a loopback service under the attacker's name);
* a state-changing request that a browser sent from another site (``Sec-Fetch-Site`` or a foreign
  ``Origin``): without keys, a loopback service would otherwise accept form posts from any page
  the user visits. Programs that send neither header are not browsers and pass;
* a body sent to a route that takes none, or declared longer than the route's own limit (a
  single file for ``/v1/verify``, a batch for ``/v1/batches``, a bank CSV for a CSV import);
* a body from a caller that is not authenticated where keys are required.

Two places consult it: :mod:`service.web.server` when waitress has read the headers (so a refused
body is never received, and ``Expect: 100-continue`` is answered only for accepted requests),
and a ``before_request`` hook (the same rules under any other WSGI server or Flask's test
client). Authentication and rate limits proper stay in :mod:`service.web.access`; the gate only
refuses early what would be refused anyway, using a short cache of key checks.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

#: Forms of the pages (sign-in, a new bank): small.
FORM_LIMIT = 64 * 1024
#: Multipart framing (boundaries, part headers) on top of an upload.
MULTIPART_SLACK = 64 * 1024
#: The largest bank CSV accepted by an import.
CSV_LIMIT = 256 * 1024 * 1024

_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_OPEN_PATHS = ("/healthz", "/readyz", "/static/", "/signin")


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RouteLimits:
    """Body limits in bytes by endpoint; an endpoint not named takes no body."""

    verify: int
    batch: int
    csv: int = CSV_LIMIT
    form: int = FORM_LIMIT
    by_endpoint: dict[str, str] = field(
        default_factory=lambda: {
            "api.verify": "verify",
            "ui.report": "verify",
            "batches.create": "batch",
            "pages.batch_create": "batch",
            "banks.add_entries": "batch",  # media files (or a CSV: see limit())
            "pages.banks_add": "batch",
            "banks.create_bank": "form",
            "pages.banks_create": "form",
            "pages.signin": "form",
            "pages.signout": "form",
            "pages.job_cancel": "form",
        }
    )

    def limit(self, endpoint: str | None, content_type: str) -> int:
        kind = self.by_endpoint.get(endpoint or "")
        if kind is None:
            return 0
        if endpoint == "banks.add_entries" and content_type.split(";")[0].strip() in (
            "text/csv",
            "text/plain",
        ):
            return self.csv
        value: int = getattr(self, kind)
        return value

    @property
    def largest(self) -> int:
        return max(self.verify, self.batch, self.csv, self.form)


class _TtlCache:
    """A small LRU of recent answers, each kept ``ttl_s`` seconds."""

    def __init__(self, ttl_s: float = 10.0, size: int = 10_000) -> None:
        self.ttl_s, self.size = ttl_s, size
        self._items: OrderedDict[str, tuple[float, bool]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, compute: Callable[[], bool]) -> bool:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] > now:
                self._items.move_to_end(key)
                return hit[1]
        value = compute()
        with self._lock:
            self._items[key] = (now + self.ttl_s, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


def default_allowed_hosts(bind_host: str) -> tuple[str, ...]:
    """``localhost`` names, the bound name, and this machine's names. IP literals are always
    allowed (see :meth:`Gate.host_allowed`)."""
    names = {"localhost", bind_host.lower()}
    try:
        names.add(socket.gethostname().lower())
        names.add(socket.getfqdn().lower())
    except OSError:
        pass
    return tuple(sorted(n for n in names if n))


def _host_name(host_header: str) -> str:
    """The host of a ``Host`` header, without port or IPv6 brackets, lower case."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


class Gate:
    def __init__(
        self,
        app: Flask,
        *,
        limits: RouteLimits,
        keys_required: bool,
        allowed_hosts: tuple[str, ...],
        key_valid: Callable[[str], bool],
        session_key_valid: Callable[[str], bool],
    ) -> None:
        self.app = app
        self.limits = limits
        self.keys_required = keys_required
        self.allowed_hosts = tuple(h.lower().rstrip(".") for h in allowed_hosts)
        self._key_valid = key_valid
        self._session_key_valid = session_key_valid
        self._keys = _TtlCache()
        self._sessions = _TtlCache()

    # --- the rules --------------------------------------------------------------------------

    def host_allowed(self, host_header: str | None) -> bool:
        """IP literals (a rebinding attack needs a name), and the allowed names (a leading dot
        allows subdomains; ``*`` allows any)."""
        if not host_header:
            return True  # HTTP/1.0 without Host: nothing to rebind
        host = _host_name(host_header)
        try:
            ipaddress.ip_address(host)
            return True
        except ValueError:
            pass
        for allowed in self.allowed_hosts:
            if allowed == "*" or host == allowed:
                return True
            if allowed.startswith(".") and (host.endswith(allowed) or host == allowed[1:]):
                return True
        return host.endswith(".localhost")

    @staticmethod
    def cross_site(method: str, headers: Mapping[str, str], host_header: str | None) -> bool:
        """A state-changing request a browser sent from another site (the rule of Go's
        ``http.CrossOriginProtection``)."""
        if method not in _UNSAFE_METHODS:
            return False
        fetch_site = headers.get("sec-fetch-site", "").lower()
        if fetch_site:
            return fetch_site not in ("same-origin", "none")
        origin = headers.get("origin")
        if not origin:
            return False  # not a browser, or a browser too old to say: CSRF tokens still apply
        if origin == "null":
            return True
        try:
            netloc = urlsplit(origin).netloc.lower()
        except ValueError:
            return True
        return netloc != (host_header or "").strip().lower()

    def endpoint(
        self, method: str, path: str, host: str | None
    ) -> tuple[str | None, Refusal | None]:
        adapter = self.app.url_map.bind(host or "localhost", url_scheme="http")
        try:
            rule, _ = adapter.match(path, method, return_rule=True)
        except RequestRedirect:
            return None, None  # Flask answers the redirect; such routes take no body
        except MethodNotAllowed as exc:
            allow = ", ".join(sorted(exc.valid_methods or ()))
            return None, Refusal(
                405, "method_not_allowed", f"{method} is not allowed here", (("Allow", allow),)
            )
        except NotFound:
            return None, Refusal(404, "not_found", "no such resource")
        return str(rule.endpoint), None

    def authenticated(self, path: str, headers: Mapping[str, str]) -> bool:
        """Whether a key (API) or a signed-in session (pages) is presented and still valid."""
        if path.startswith("/v1/") or path == "/metrics":
            auth = headers.get("authorization", "")
            key = auth[7:].strip() if auth[:7].lower() == "bearer " else headers.get("x-api-key")
            if not key:
                return False
            return self._keys.get(key, lambda: self._key_valid(key))
        cookie_name = str(self.app.config.get("SESSION_COOKIE_NAME", "session"))
        value = _cookie(headers.get("cookie", ""), cookie_name)
        if not value:
            return False
        return self._sessions.get(value, lambda: self._session_key_valid(value))

    def check(
        self, method: str, path: str, headers: Mapping[str, str], has_body: bool, length: int | None
    ) -> Refusal | None:
        """The first rule this request breaks, or None. ``headers`` have lower-case names;
        ``length`` is the declared Content-Length (None when chunked)."""
        host = headers.get("host")
        if not self.host_allowed(host):
            return Refusal(
                400,
                "bad_host",
                "this server does not answer to that host name; an operator can add it to "
                "allowed_hosts",
            )
        if self.cross_site(method, headers, host):
            return Refusal(
                403,
                "cross_site",
                "a request from another site may not change anything here",
            )
        if not has_body:
            return None
        endpoint, refusal = self.endpoint(method, path, host)
        if refusal is not None:
            return refusal
        limit = self.limits.limit(endpoint, headers.get("content-type", ""))
        if limit == 0:
            return Refusal(413, "too_large", f"{method} {path} takes no request body")
        if (
            self.keys_required
            and not path.startswith(_OPEN_PATHS)
            and not self.authenticated(path, headers)
        ):
            return Refusal(
                401,
                "unauthorized",
                "this server needs an API key: send 'Authorization: Bearer <key>'",
                (("WWW-Authenticate", 'Bearer realm="shingan"'),),
            )
        if length is not None and length > limit:
            return Refusal(
                413, "too_large", f"the request body is over this route's limit of {limit} bytes"
            )
        return None


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value.strip('"')
    return None


def session_checker(app: Flask, live_key: Callable[[str], Any]) -> Callable[[str], bool]:
    """Checks a session cookie's signature and that the key it names is live (not revoked)."""

    def check(value: str) -> bool:
        serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
        if serializer is None:
            return False
        try:
            data = serializer.loads(
                value, max_age=int(app.permanent_session_lifetime.total_seconds())
            )
        except Exception:  # a bad or expired signature
            return False
        name = data.get("key_name") if isinstance(data, dict) else None
        return isinstance(name, str) and live_key(name) is not None

    return check
