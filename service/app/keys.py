"""API keys: create, list and revoke them (with their audit events), and sign in with one.
Called by ``shingan keys ...`` and the ``/signin`` page."""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from service.app.errors import BadRequest, Conflict, NotFound
from service.store import ADMIN, USER, ApiKey, Store, StoreConflict, StoreNotFound


def check_name(name: str) -> None:
    """Raises: BadRequest when ``name`` cannot name a key (1-64 characters)."""
    if not 1 <= len(name) <= 64:
        raise BadRequest("a key name is 1-64 characters")


@dataclass(frozen=True)
class Keys:
    """The API keys of one store."""

    store: Store

    def create(
        self, name: str, caller: str, *, rate_per_minute: int | None = None, admin: bool = False
    ) -> str:
        """Make a key for ``name`` and return it: only its hash is kept, so it is shown once.
        An admin key manages every bank, reads every report and may create shared banks.

        Raises:
            BadRequest: a bad name (:func:`check_name`). Conflict: the name is in use.
        """
        check_name(name)
        try:
            key = self.store.keys.create_key(name, rate_per_minute, ADMIN if admin else USER)
        except StoreConflict as exc:
            raise Conflict(str(exc)) from exc
        self.store.reports.audit_event(caller, "key_created", name)
        return key

    def list(self) -> builtins.list[ApiKey]:
        """Every key, revoked ones too, by name (never the key itself: it is not kept)."""
        return self.store.keys.list_keys()

    def revoke(self, name: str, caller: str) -> None:
        """Revoke a key at once (revoking a revoked key changes nothing, and is audited).

        Raises:
            NotFound: no key of that name.
        """
        try:
            self.store.keys.revoke_key(name)
        except StoreNotFound as exc:
            raise NotFound(str(exc)) from exc
        self.store.reports.audit_event(caller, "key_revoked", name)

    def sign_in(self, value: str) -> ApiKey | None:
        """The live key with this value, its sign-in audited; None for an unknown or revoked
        key."""
        key = self.store.keys.check_key(value)
        if key is not None:
            self.store.reports.audit_event(f"key:{key.name}", "signed_in")
        return key
