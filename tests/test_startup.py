"""The ``shingan`` command imports heavy libraries only when a command needs them.

Each check runs in a fresh interpreter (this test process has imported everything already) and
asserts what was imported, never how long it took: start-up times are measured by
``benchmarks/bench_startup.py``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, sample

#: Libraries that cost tens to hundreds of milliseconds to import.
HEAVY = ("numpy", "cv2", "onnxruntime", "c2pa", "PIL", "flask", "sqlalchemy", "alembic")


def loaded_after(code: str, data_dir: Path, modules: tuple[str, ...] = HEAVY) -> list[str]:
    """Which of ``modules`` are imported once ``code`` has run in a fresh interpreter (from this
    checkout, with ``data_dir`` as the data folder)."""
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {modules!r} if m in sys.modules))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHINGAN_")}
    env["SHINGAN_DATA_DIR"] = str(data_dir)
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert isinstance(found, list)
    return found


def cli(*args: str) -> str:
    """Run ``shingan ARGS`` inside the probe (click's exit is caught; output goes to stdout)."""
    return (
        "from service.cli import main\n"
        "try:\n"
        f"    main({list(args)!r}, prog_name='shingan')\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
    )


def test_importing_the_cli_imports_nothing_heavy(tmp_path: Path) -> None:
    assert loaded_after("import service.cli", tmp_path) == []


def test_help_and_config_import_nothing_heavy(tmp_path: Path) -> None:
    heavy = (*HEAVY, "service.contract", "service.pipeline", "service.store")
    assert loaded_after(cli("--help"), tmp_path, heavy) == []
    assert loaded_after(cli("config"), tmp_path, heavy) == []
    assert loaded_after(cli("--version"), tmp_path, heavy) == []


def test_help_works_in_a_fresh_process(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "SHINGAN_DATA_DIR": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: shingan [OPTIONS] COMMAND [ARGS]...")
    for command in ("verify", "batch", "config", "banks", "keys", "models", "serve", "worker"):
        assert f"\n  {command} " in done.stdout


def test_a_one_off_verify_imports_no_web_layer_and_no_database(tmp_path: Path) -> None:
    found = loaded_after(cli("verify", "--json", str(sample("unsigned.jpg"))), tmp_path)
    assert {"numpy", "c2pa"} <= set(found)  # the probe sees the analysis's imports
    assert not {"flask", "sqlalchemy", "alembic"} & set(found)
    assert not (tmp_path / "shingan.db").exists()


def test_verify_with_a_current_database_reads_it_without_alembic(tmp_path: Path) -> None:
    from provenance.media import Limits
    from service.app.banks import Banks
    from service.banks import BankEntry
    from service.store import Store, default_url

    store = Store(default_url(tmp_path))  # created and migrated to the latest schema
    store.close()
    found = loaded_after(cli("verify", "--json", str(sample("unsigned.jpg"))), tmp_path)
    assert not {"flask", "alembic", "sqlalchemy"} & set(found)  # no bank: no database layer
    store = Store(default_url(tmp_path))
    try:
        banks = Banks(store, Limits(), tmp_path)
        banks.create_bank("fakes", "manipulated", owner=None, shared=True, caller="test")
        entry = BankEntry(bank="fakes", entry="1", label="manipulated", pdq="f" * 64)
        assert banks.add("fakes", [entry], caller="test") == 1
    finally:
        store.close()
    # The banks are read with sqlite3 (service.banks_sqlite; tests/test_banks_db.py checks the
    # reads and that verify finds a match through them).
    found = loaded_after(cli("verify", "--json", str(sample("unsigned.jpg"))), tmp_path)
    assert not {"flask", "alembic", "sqlalchemy"} & set(found)

    # A database at an older schema goes through the database layer, which migrates it.
    import sqlite3
    from contextlib import closing

    from alembic import command
    from alembic.config import Config as AlembicConfig

    from service.db_url import SCHEMA_HEAD
    from service.store.db import MIGRATIONS

    older = tmp_path / "older"
    older.mkdir()
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", default_url(older))
    command.upgrade(cfg, "0002")
    with closing(sqlite3.connect(older / "shingan.db")) as db, db:
        db.execute("INSERT INTO banks (name, label, created_at) VALUES ('b', 'authentic', 0)")
        db.execute(
            "INSERT INTO bank_entries (bank, entry, label, pdq, created_at) "
            "VALUES ('b', '1', 'authentic', ?, 0)",
            ("f" * 64,),
        )
    found = loaded_after(cli("verify", "--json", str(sample("unsigned.jpg"))), older)
    assert "sqlalchemy" in found
    with closing(sqlite3.connect(older / "shingan.db")) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(SCHEMA_HEAD,)]
