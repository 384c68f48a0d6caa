"""API keys, per-key rate limits and /metrics."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from service.cli import main
from service.config import load_config
from service.store import Store
from service.web import create_app
from tests.conftest import sample
from tests.test_api import assert_error


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def status_of(client: FlaskClient, method: str, url: str, **kw: Any) -> int:
    with client.open(url, method=method, **kw) as res:
        return res.status_code


def test_keys_are_needed_beyond_loopback() -> None:
    assert not load_config(overrides={"host": "127.0.0.1"}).keys_required()
    assert load_config(overrides={"host": "0.0.0.0"}).keys_required()  # noqa: S104
    assert not load_config(overrides={"host": "0.0.0.0", "api_keys": "off"}).keys_required()  # noqa: S104
    assert load_config(overrides={"api_keys": "required"}).keys_required()


def test_requests_without_a_good_key_are_refused(keyed: Flask) -> None:
    client = keyed.test_client()
    store: Store = keyed.extensions["shingan"].store
    key = store.keys.create_key("newsroom")
    data = sample("unsigned.jpg").read_bytes()

    with client.post("/v1/verify", data=data) as res:
        assert_error(res, 401, "unauthorized")
        assert res.headers["WWW-Authenticate"].startswith("Bearer")
    with client.post("/v1/verify", data=data, headers=bearer("shg_wrong")) as res:
        assert_error(res, 401, "unauthorized")
    assert status_of(client, "GET", "/healthz") == 200  # probes need no key
    assert status_of(client, "GET", "/metrics") == 401

    with client.post("/v1/verify", data=data, headers=bearer(key)) as res:
        assert res.status_code == 200
    with client.post("/v1/verify", data=data, headers={"X-API-Key": key}) as res:
        assert res.status_code == 200
    assert store.reports.audit()[-1].actor == "key:newsroom"
    assert key not in str(store.keys.list_keys())  # only its hash is kept

    store.keys.revoke_key("newsroom")
    with client.post("/v1/verify", data=data, headers=bearer(key)) as res:
        assert_error(res, 401, "unauthorized")


def test_a_batch_is_seen_only_by_its_key(keyed: Flask) -> None:
    client = keyed.test_client()
    store: Store = keyed.extensions["shingan"].store
    mine, theirs = store.keys.create_key("mine"), store.keys.create_key("theirs")
    with client.post(
        "/v1/batches",
        data={"file": (io.BytesIO(sample("unsigned.jpg").read_bytes()), "a.jpg")},
        content_type="multipart/form-data",
        headers=bearer(mine),
    ) as res:
        assert res.status_code == 202
        batch_id = res.get_json()["id"]
    assert status_of(client, "GET", f"/v1/batches/{batch_id}", headers=bearer(mine)) == 200
    assert status_of(client, "GET", f"/v1/batches/{batch_id}", headers=bearer(theirs)) == 404
    url = f"/v1/batches/{batch_id}/results.csv"
    assert status_of(client, "GET", url, headers=bearer(theirs)) == 404


def test_cli_keys_create_list_revoke(tmp_path: Path) -> None:
    env = {"SHINGAN_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    made = runner.invoke(main, ["keys", "create", "--name", "desk", "--rate-limit", "5"], env=env)
    assert made.exit_code == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("shg_")
    assert len(key) > 40
    twice = runner.invoke(main, ["keys", "create", "--name", "desk"], env=env)
    assert twice.exit_code == 2
    listed = runner.invoke(main, ["keys", "list"], env=env).stdout
    assert listed.startswith("desk\tshg_")
    assert "active\t5/min" in listed
    assert key not in listed
    assert runner.invoke(main, ["keys", "revoke", "desk"], env=env).exit_code == 0
    assert "revoked" in runner.invoke(main, ["keys", "list"], env=env).stdout
    assert runner.invoke(main, ["keys", "revoke", "nobody"], env=env).exit_code == 2

    app = create_app({"data_dir": str(tmp_path), "api_keys": "required"})
    try:
        client = app.test_client()
        assert status_of(client, "GET", "/v1/banks", headers=bearer(key)) == 401
    finally:
        app.extensions["shingan"].runner.stop()


def test_rate_limits_answer_429_with_retry_after(tmp_path: Path) -> None:
    app = create_app({"data_dir": str(tmp_path), "rate_limit_per_minute": 3})
    try:
        client = app.test_client()
        store: Store = app.extensions["shingan"].store
        slow = store.keys.create_key("slow", rate_per_minute=1)
        assert [status_of(client, "GET", "/v1/banks") for _ in range(4)] == [200, 200, 200, 429]
        with client.get("/v1/banks") as res:
            assert_error(res, 429, "rate_limited")
            assert 1 <= int(res.headers["Retry-After"]) <= 60
        # A key has its own budget (here smaller than the default).
        codes = [status_of(client, "GET", "/v1/banks", headers=bearer(slow)) for _ in range(2)]
        assert codes == [200, 429]
        assert status_of(client, "GET", "/healthz") == 200  # never limited
    finally:
        app.extensions["shingan"].runner.stop()


def test_metrics_in_prometheus_format(tmp_path: Path) -> None:
    app = create_app({"data_dir": str(tmp_path)})
    try:
        client = app.test_client()
        with client.post("/v1/verify", data=sample("unsigned.jpg").read_bytes()) as res:
            assert res.status_code == 200
        with client.get("/metrics") as res:
            text = res.get_data(as_text=True)
            assert res.mimetype == "text/plain"
    finally:
        app.extensions["shingan"].runner.stop()
    assert 'shingan_http_requests_total{method="POST",route="/v1/verify",status="200"} 1.0' in text
    assert 'shingan_http_request_duration_seconds_count{route="/v1/verify"} 1.0' in text
    assert 'shingan_verdicts_total{label="inconclusive"} 1.0' in text
    assert "shingan_queue_depth 0.0" in text
