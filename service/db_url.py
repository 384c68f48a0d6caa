"""Database URLs: the data folder's default SQLite file, the file a URL names, the driver a
``postgresql://`` URL means.

Apart from :mod:`service.store` because these need no SQLAlchemy: ``shingan config`` prints the
URL, and a one-off ``shingan verify`` looks for the file, without importing the database layer.
"""

from __future__ import annotations

from pathlib import Path

#: The newest migration in ``service/migrations/versions``: a database stamped with it needs no
#: Alembic run (tests/test_store.py checks that this is Alembic's head).
SCHEMA_HEAD = "0003"


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'shingan.db').resolve()}"


def sqlite_file(url: str) -> Path | None:
    """The SQLite file a URL names (None for other databases and in-memory ones)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != prefix + ":memory:":
        return Path(url[len(prefix) :])
    return None


def normalise_url(url: str) -> str:
    """``postgresql://`` means the psycopg (3) driver, the one Shingan installs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
