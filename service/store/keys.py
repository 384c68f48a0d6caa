"""API keys, kept hashed: a key is shown once when made, then only checked."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from service.store.db import ApiKeyRow, Database, StoreConflict, StoreNotFound, now

# API key roles: an admin key manages every bank and reads every report.
USER, ADMIN = "user", "admin"
ROLES = (USER, ADMIN)


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    rate_per_minute: int | None
    role: str = USER

    @property
    def admin(self) -> bool:
        return self.role == ADMIN


@dataclass(frozen=True)
class Viewer:
    """Who is asking, for ownership checks: an actor (``key:<name>``) and whether it is an
    admin. ``None`` in place of a viewer means no checks (keys are not in use, or the CLI)."""

    actor: str
    admin: bool = False

    def may_see(self, owner: str | None) -> bool:
        return self.admin or (owner is not None and owner == self.actor)


def hash_key(key: str) -> str:
    """API keys are 256-bit random tokens, so one SHA-256 is enough to store them safely."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyRepository:
    """The API keys of one database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create_key(self, name: str, rate_per_minute: int | None = None, role: str = USER) -> str:
        """Make a key and return it; only its hash is kept, so it is shown once.

        Raises: StoreConflict when a key of that name exists.
        """
        key = "shg_" + secrets.token_urlsafe(32)
        try:
            with self._db.write.begin() as s:
                s.add(
                    ApiKeyRow(
                        name=name,
                        prefix=key[:10],
                        key_hash=hash_key(key),
                        created_at=now(),
                        rate_per_minute=rate_per_minute,
                        role=role,
                    )
                )
        except IntegrityError as exc:
            raise StoreConflict(f"a key named {name!r} exists already") from exc
        return key

    def check_key(self, key: str) -> ApiKey | None:
        """The live key with this value, or None (unknown or revoked)."""
        digest = hash_key(key)
        with self._db.read() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == digest))
            if row is None or row.revoked_at is not None:
                return None
            if not hmac.compare_digest(row.key_hash, digest):  # pragma: no cover - belt and braces
                return None
            return _key(row)

    def live_key(self, name: str) -> ApiKey | None:
        """The key of that name unless it was revoked (a signed-in page re-checks it)."""
        with self._db.read() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.name == name))
            return None if row is None or row.revoked_at is not None else _key(row)

    def list_keys(self) -> list[ApiKey]:
        with self._db.read() as s:
            return [_key(r) for r in s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.name))]

    def revoke_key(self, name: str) -> None:
        """Raises: StoreNotFound."""
        with self._db.write.begin() as s:
            row = s.scalar(select(ApiKeyRow).where(ApiKeyRow.name == name))
            if row is None:
                raise StoreNotFound(f"no key named {name!r}")
            if row.revoked_at is None:
                row.revoked_at = now()

    def has_keys(self) -> bool:
        with self._db.read() as s:
            return bool(
                s.scalar(
                    select(func.count())
                    .select_from(ApiKeyRow)
                    .where(ApiKeyRow.revoked_at.is_(None))
                )
            )


def _key(r: ApiKeyRow) -> ApiKey:
    return ApiKey(
        r.id, r.name, r.prefix, r.created_at, r.revoked_at, r.rate_per_minute, r.role or USER
    )
