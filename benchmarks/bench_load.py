"""Load with hostile files in the mix: does the service stay up, answer health checks and refuse
what it must, without a single server error?

    .venv/bin/python benchmarks/bench_load.py [--clients 16] [--seconds 60] [--hostile 0.25]

Starts ``shingan serve`` (keys required, one key per client, a fresh data dir) on a free loopback
port and runs ``--clients`` threads for ``--seconds``, each sending one request after another:
the project's samples (images and a signed video) through ``POST /v1/verify``, and with
probability ``--hostile`` one of the hostile requests below. A separate prober asks ``/healthz``
ten times a second. Reported: requests and analysed files per second, latency percentiles of
verifications, answers by status, health-check latency, and the server's peak resident memory
(``VmHWM``). Every input is built by this script from the samples (tests/hostile.py).

Hostile requests: an XMP packet nested 1,000 deep (JPEG), a 100,000-element XMP packet (PNG), a
JPEG whose header claims 13000x13000, a HEIC whose ``ispe`` claims 60000x60000, a JPEG that
decodes to just under the pixel limit (120 M pixels from 37 KB), bytes of no known format, a
1 GiB upload without a key, a body declared over the route's limit, a body to ``/healthz``, a
cross-site form post, a malformed ``Content-Length``.

A server error is any 5xx other than 503 ``busy`` (load shedding with ``Retry-After``), a
connection reset while the request was being answered, or a timeout.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.store import Store, default_url  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.hostile import heic_ispe, nested_xmp_jpeg, sof_patched_jpeg  # noqa: E402

SAMPLES = [
    "unsigned.jpg",
    "camera_capture.jpg",
    "tampered.jpg",
    "ai_generated.png",
    "ai_metadata.png",
    "sdxl_watermarked.png",
    "composite_ai_ingredient.jpg",
    "signed_video.mp4",
]


def _wide_xmp_png() -> bytes:
    import io

    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    items = "".join(f"<rdf:li>{i}</rdf:li>" for i in range(25_000))
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:a="urn:a">'
        + f"<rdf:Description><a:k><rdf:Bag>{items}</rdf:Bag></a:k></rdf:Description>" * 4
        + "</rdf:RDF></x:xmpmeta>"
    )
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet)
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def _raw(port: int, head: str, body: bytes = b"") -> int:
    """Send a request head (and body); the status of the answer, or -1 for none."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        first = b""
        try:
            while b"\r\n" not in first:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                first += chunk
        except OSError:
            pass
    try:
        return int(first.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return -1


class Load:
    def __init__(
        self, port: int, keys: list[str], hostile: float, seconds: float, kinds: list[str]
    ) -> None:
        self.port, self.keys, self.hostile, self.kinds = port, keys, hostile, kinds
        self.stop_at = time.monotonic() + seconds
        self.lock = threading.Lock()
        self.statuses: Counter[str] = Counter()
        self.by_kind: dict[str, Counter[int]] = {}
        self.verify_ms: list[float] = []
        self.health_ms: list[float] = []
        self.errors: list[str] = []
        self.files = {name: (ROOT / "samples" / name).read_bytes() for name in SAMPLES}
        self.bombs: dict[str, bytes] = {
            "xmp_nested": nested_xmp_jpeg(1000),
            "xmp_wide": _wide_xmp_png(),
            "sof_13000": sof_patched_jpeg(13000, 13000),
            "heic_ispe": heic_ispe(60000, 60000),
            "sof_at_limit": sof_patched_jpeg(12596, 9447),
            "junk": os.urandom(50_000),
        }

    def _post(self, key: str, data: bytes, name: str) -> tuple[int, float]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v1/verify?filename={name}",
            data=data,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/octet-stream"},
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=300) as res:
                res.read()
                status = res.status
        except urllib.error.HTTPError as exc:
            exc.read()
            status = exc.code
        return status, (time.perf_counter() - started) * 1000

    def _protocol(self, key: str, kind: str) -> int:
        p = self.port
        if kind == "no_key_1gib":
            return _raw(
                p,
                f"POST /v1/verify HTTP/1.1\nHost: 127.0.0.1\nContent-Length: {1 << 30}\n"
                "Expect: 100-continue\n",
            )
        if kind == "over_route_limit":
            return _raw(
                p,
                f"POST /v1/verify HTTP/1.1\nHost: 127.0.0.1\nAuthorization: Bearer {key}\n"
                f"Content-Length: {500 << 20}\nExpect: 100-continue\n",
            )
        if kind == "body_to_healthz":
            return _raw(p, "POST /healthz HTTP/1.1\nHost: 127.0.0.1\nContent-Length: 4\n", b"abcd")
        if kind == "cross_site":
            body = b"name=poison&label=manipulated"
            return _raw(
                p,
                f"POST /v1/banks HTTP/1.1\nHost: 127.0.0.1\nOrigin: http://attacker.example\n"
                f"Authorization: Bearer {key}\nContent-Type: application/x-www-form-urlencoded\n"
                f"Content-Length: {len(body)}\nConnection: close\n",
                body,
            )
        return _raw(p, "POST /v1/verify HTTP/1.1\nHost: 127.0.0.1\nContent-Length: 12x\n")

    def client(self, index: int) -> None:
        rng = random.Random(index)
        key = self.keys[index]
        protocol = [
            "no_key_1gib",
            "over_route_limit",
            "body_to_healthz",
            "cross_site",
            "bad_length",
        ]
        while time.monotonic() < self.stop_at:
            kind = "?"
            try:
                if rng.random() < self.hostile:
                    kind = rng.choice(self.kinds or [*self.bombs, *protocol])
                    if kind in self.bombs:
                        status, _ = self._post(key, self.bombs[kind], kind)
                    else:
                        status = self._protocol(key, kind)
                else:
                    kind = "sample"
                    name = rng.choice(SAMPLES)
                    status, ms = self._post(key, self.files[name], name)
                    if status == 200:
                        with self.lock:
                            self.verify_ms.append(ms)
            except Exception as exc:  # a reset or a timeout is a server failure here
                status = -1
                with self.lock:
                    self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            with self.lock:
                self.by_kind.setdefault(kind, Counter())[status] += 1

    def prober(self) -> None:
        while time.monotonic() < self.stop_at:
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=30):
                    pass
                ms = (time.perf_counter() - started) * 1000
            except Exception as exc:
                ms = float("inf")
                with self.lock:
                    self.errors.append(f"healthz: {exc}")
            with self.lock:
                self.health_ms.append(ms)
            time.sleep(max(0.0, 0.1 - (time.perf_counter() - started)))


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _hwm(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(clients: int, seconds: float, hostile: float, kinds: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="shingan-load-") as tmp:
        data = Path(tmp) / "data"
        store = Store(default_url(data))
        keys = [store.keys.create_key(f"client-{i}") for i in range(clients)]
        store.close()
        port = free_port()
        env = {
            **os.environ,
            "SHINGAN_DATA_DIR": str(data),
            "SHINGAN_API_KEYS": "required",
            "SHINGAN_RATE_LIMIT_PER_MINUTE": "100000",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_up(port, server)
            load = Load(port, keys, hostile, seconds, kinds)
            threads = [threading.Thread(target=load.client, args=(i,)) for i in range(clients)]
            threads.append(threading.Thread(target=load.prober))
            started = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - started
            peak = _hwm(server.pid)
        finally:
            server.terminate()
            _, stderr = server.communicate(timeout=30)
    statuses: Counter[int] = Counter()
    for counts in load.by_kind.values():
        statuses.update(counts)
    failures = sum(n for s, n in statuses.items() if s == -1 or (s >= 500 and s != 503))
    analysed = load.by_kind.get("sample", Counter()).get(200, 0)
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "hostile_share": hostile,
        "requests": sum(statuses.values()),
        "requests_per_s": round(sum(statuses.values()) / elapsed, 2),
        "samples_analysed_per_s": round(analysed / elapsed, 2),
        "verify_ms": {q: round(_pct(load.verify_ms, q)) for q in (50, 95, 99)},
        "healthz_ms": {
            "p50": round(_pct(load.health_ms, 50), 1),
            "p99": round(_pct(load.health_ms, 99), 1),
            "max": round(max(load.health_ms, default=float("nan")), 1),
            "probes": len(load.health_ms),
        },
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "by_kind": {k: {str(s): n for s, n in sorted(v.items())} for k, v in load.by_kind.items()},
        "server_errors": failures,
        "errors": load.errors[:20],
        "server_peak_rss_mb": round(peak),
        "server_tracebacks": stderr.count("Traceback"),
    }


def _wait_up(port: int, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("shingan serve exited at start")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise SystemExit("shingan serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--hostile", type=float, default=0.25)
    parser.add_argument("--kind", action="append", default=[], help="only these hostile kinds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.clients, args.seconds, args.hostile, args.kind)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    _print(result)


def _print(r: dict[str, Any]) -> None:
    show: Callable[[str], None] = functools.partial(print, flush=True)
    show(
        f"{r['clients']} clients, {r['seconds']} s, {r['hostile_share']:.0%} hostile: "
        f"{r['requests']} requests ({r['requests_per_s']}/s), "
        f"{r['samples_analysed_per_s']} samples analysed/s"
    )
    v = r["verify_ms"]
    show(f"verify (200s): p50 {v[50]} ms, p95 {v[95]} ms, p99 {v[99]} ms")
    h = r["healthz_ms"]
    show(
        f"/healthz: p50 {h['p50']} ms, p99 {h['p99']} ms, max {h['max']} ms ({h['probes']} probes)"
    )
    show(f"statuses: {r['statuses']}")
    for kind, counts in sorted(r["by_kind"].items()):
        show(f"  {kind:18s} {counts}")
    show(
        f"server errors (5xx but 503 busy, resets, timeouts): {r['server_errors']}; "
        f"tracebacks in the server log: {r['server_tracebacks']}; "
        f"server peak RSS {r['server_peak_rss_mb']} MB"
    )
    for e in r["errors"]:
        show(f"  ! {e}")


if __name__ == "__main__":
    main()
