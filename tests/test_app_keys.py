"""The API keys of the application layer, used without Flask (as the CLI does)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.app.errors import BadRequest, Conflict, NotFound
from service.app.keys import Keys
from service.store import Store, default_url


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(default_url(tmp_path))
    yield store
    store.close()


def test_create_list_revoke_and_their_audit(store: Store) -> None:
    keys = Keys(store)
    with pytest.raises(BadRequest, match="1-64"):
        keys.create("", "cli")
    with pytest.raises(BadRequest, match="1-64"):
        keys.create("x" * 65, "cli")
    key = keys.create("desk", "cli")
    admin = keys.create("ops", "cli", rate_per_minute=5, admin=True)
    with pytest.raises(Conflict, match="exists already"):
        keys.create("desk", "cli")
    listed = keys.list()
    assert [(k.name, k.role, k.rate_per_minute, k.revoked_at) for k in listed] == [
        ("desk", "user", None, None),
        ("ops", "admin", 5, None),
    ]
    assert key not in repr(listed)  # only hashes are kept
    assert admin not in repr(listed)
    assert store.keys.check_key(key) is not None
    keys.revoke("desk", "cli")
    assert store.keys.check_key(key) is None
    with pytest.raises(NotFound, match="no key named"):
        keys.revoke("nobody", "cli")
    events = [(e.actor, e.action, e.versions) for e in reversed(store.reports.audit())]
    assert events == [
        ("cli", "key_created", {"detail": "desk"}),
        ("cli", "key_created", {"detail": "ops"}),
        ("cli", "key_revoked", {"detail": "desk"}),
    ]


def test_sign_in_checks_the_key_and_audits_it(store: Store) -> None:
    keys = Keys(store)
    key = keys.create("desk", "cli")
    assert keys.sign_in("shg_wrong") is None
    signed = keys.sign_in(key)
    assert signed is not None
    assert signed.name == "desk"
    keys.revoke("desk", "cli")
    assert keys.sign_in(key) is None
    assert [e.action for e in reversed(store.reports.audit())] == [
        "key_created",
        "signed_in",
        "key_revoked",
    ]
    assert store.reports.audit()[1].actor == "key:desk"
