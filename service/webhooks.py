"""Webhooks: where a finished batch is announced, and how the announcement is sent safely.

A webhook URL is chosen by the caller, so it is treated as hostile: the service must not be
made to send requests into its own network (cloud metadata at 169.254.169.254, an admin page
on loopback, a printer on the LAN). So:

* at creation, a URL must be ``http(s)``, carry no user name or password, and name a host whose
  addresses are all public; loopback, link-local, private, shared, multicast, reserved and
  unspecified addresses are refused, as are IPv6 forms that embed them;
* at every delivery the host is resolved again and the request is sent to an address that was
  just checked (the connection is pinned to it), so a DNS answer that changes after the check
  ("rebinding") cannot redirect it; redirects are never followed;
* hosts an operator trusts (an internal receiver) are listed in ``webhook_allowed_hosts``
  (names, addresses or networks such as ``10.0.0.0/8``) and skip the address checks.

The batch status shows the URL without its query string or fragment, where tokens live.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from provenance.errors import ShinganError

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Shingan-Signature"
MAX_URL = 2000
TIMEOUT_S = 10.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookRefused(ShinganError):
    """The URL or its address may not be called; the message says why."""

    code = "webhook_refused"


@dataclass(frozen=True)
class Target:
    """A checked webhook URL."""

    url: str
    scheme: str
    host: str  # as written (IPv6 without brackets)
    port: int
    path: str  # path and query, as sent in the request line


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    if int(addr) >> 32 == 0 and int(addr) > 1:  # IPv4-compatible ::a.b.c.d (deprecated)
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def is_public(addr: IPAddress) -> bool:
    """Whether a webhook may be sent to this address without the operator allowing it."""
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded_ipv4(addr)
        if inner is not None and not is_public(inner):
            return False
    return bool(addr.is_global) and not addr.is_multicast and not addr.is_reserved


def _allowed(host: str, addr: IPAddress | None, allowed_hosts: Iterable[str]) -> bool:
    for entry in allowed_hosts:
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == host.lower():
            return True
        if addr is not None:
            try:
                if addr in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def parse(url: str) -> Target:
    """Check a URL's form (not its addresses).

    Raises:
        WebhookRefused: not http(s), too long, with credentials, or without a host.
    """
    if len(url) > MAX_URL:
        raise WebhookRefused(f"webhook_url is longer than {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookRefused(f"webhook_url is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused("webhook_url must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise WebhookRefused(
            "webhook_url must not contain a user name or password; "
            "the request is signed with webhook_secret instead"
        )
    if any(ch in url for ch in "\r\n\t ") or any(ord(ch) < 32 for ch in url):
        raise WebhookRefused("webhook_url contains spaces or control characters")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(
        url=url,
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or (443 if parts.scheme == "https" else 80),
        path=path,
    )


def resolve(host: str, port: int) -> list[IPAddress]:
    """The host's addresses (an IP literal is its own).

    Raises:
        WebhookRefused: the name cannot be resolved.
    """
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise WebhookRefused(f"the webhook host {host!r} cannot be resolved") from exc
    out: list[IPAddress] = []
    for info in infos:
        addr = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if addr not in out:
            out.append(addr)
    if not out:
        raise WebhookRefused(f"the webhook host {host!r} has no address")
    return out


def checked_addresses(target: Target, allowed_hosts: Iterable[str] = ()) -> list[IPAddress]:
    """Resolve the target and check every address; returns those it may be sent to.

    All of a name's addresses must pass: a name that resolves to one public and one private
    address is refused, since which one a client uses is up to the resolver.

    Raises:
        WebhookRefused: an address is not public and the host is not allowed by the operator.
    """
    allowed_hosts = tuple(allowed_hosts)
    if _allowed(target.host, None, allowed_hosts):
        return resolve(target.host, target.port)
    addresses = resolve(target.host, target.port)
    for addr in addresses:
        if not is_public(addr) and not _allowed(target.host, addr, allowed_hosts):
            raise WebhookRefused(
                f"the webhook host {target.host!r} resolves to {addr}, which is not a public "
                "address; an operator can allow it with webhook_allowed_hosts"
            )
    return addresses


def check_url(url: str, allowed_hosts: Iterable[str] = ()) -> Target:
    """Everything checked when a batch is created.

    Raises:
        WebhookRefused.
    """
    target = parse(url)
    checked_addresses(target, allowed_hosts)
    return target


def display_url(url: str | None) -> str | None:
    """The URL as shown in a batch's status: no query string or fragment (tokens live there)."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    query = "…" if parts.query else ""
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, address: IPAddress, host: str, port: int) -> None:
        super().__init__(host, port, timeout=TIMEOUT_S)
        self.address = str(address)

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, address: IPAddress, host: str, port: int) -> None:
        super().__init__(host, port, timeout=TIMEOUT_S, context=ssl.create_default_context())
        self.address = str(address)

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        # the certificate is checked against the name in the URL, not the address
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(
    target: Target, body: bytes, headers: dict[str, str], allowed_hosts: Iterable[str] = ()
) -> int:
    """POST to the target through a freshly checked, pinned address; returns the status.

    Redirects are answers like any other (a 3xx is not a success), never followed.

    Raises:
        WebhookRefused: the host no longer resolves to an address it may be sent to.
        OSError, http.client.HTTPException: the connection failed.
    """
    address = checked_addresses(target, allowed_hosts)[0]
    cls = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    conn = cls(address, target.host, target.port)
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(64 * 1024)
        return int(response.status)
    finally:
        conn.close()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>``; the time stops replays."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class BatchStatus(Protocol):
    """A batch's status as its JSON (``service.store.batches.BatchRecord`` has it)."""

    def to_dict(self) -> dict[str, Any]: ...


class WebhookStore(Protocol):
    """What delivery needs of the store's batches (``service.store.batches.BatchRepository``):
    the batch, its webhook, and a place for the outcome."""

    def get_batch(self, batch_id: str) -> BatchStatus | None: ...

    def webhook_target(self, batch_id: str) -> tuple[str, str] | None: ...

    def set_webhook_state(self, batch_id: str, state: str, attempts: int) -> None: ...


def webhook_body(store: WebhookStore, batch_id: str) -> bytes:
    found = store.get_batch(batch_id)
    batch = found.to_dict() if found is not None else {"id": batch_id}
    batch.pop("actor", None)
    batch.pop("webhook", None)
    payload = {
        "event": "batch.completed",
        "batch": batch,
        "results": {
            "csv": f"/v1/batches/{batch_id}/results.csv",
            "jsonl": f"/v1/batches/{batch_id}/results.jsonl",
        },
    }
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def deliver_webhook(
    store: WebhookStore,
    batch_id: str,
    *,
    attempts: int = 5,
    backoff_s: float = 2.0,
    allowed_hosts: Iterable[str] = (),
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """POST the completed batch to its webhook; retry failures after backoff_s, 2x, 4x, ...

    Returns whether it was delivered (a 2xx answer). The state is recorded on the batch. A URL
    that is refused (its host now resolves to a private address, say) is not retried.
    """
    found = store.webhook_target(batch_id)
    if found is None:
        return False
    url, secret = found
    body = webhook_body(store, batch_id)
    try:
        target = parse(url)
    except WebhookRefused as exc:
        log.warning("webhook for batch %s refused: %s", batch_id, exc)
        store.set_webhook_state(batch_id, "refused", 0)
        return False
    for attempt in range(1, attempts + 1):
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "shingan-webhook/1",
            SIGNATURE_HEADER: sign(secret, body, stamp),
        }
        try:
            status = post(target, body, headers, allowed_hosts)
            ok = 200 <= status < 300
            if not ok:
                log.warning(
                    "webhook for batch %s, attempt %d: HTTP %d from %s",
                    batch_id,
                    attempt,
                    status,
                    target.host,
                )
        except WebhookRefused as exc:
            log.warning("webhook for batch %s refused at send time: %s", batch_id, exc)
            store.set_webhook_state(batch_id, "refused", attempt)
            return False
        except (OSError, http.client.HTTPException, ValueError) as exc:
            log.warning("webhook for batch %s, attempt %d: %s", batch_id, attempt, exc)
            ok = False
        store.set_webhook_state(batch_id, "delivered" if ok else "retrying", attempt)
        if ok:
            return True
        if attempt < attempts:
            sleep(backoff_s * 2 ** (attempt - 1))
    store.set_webhook_state(batch_id, "failed", attempts)
    return False
