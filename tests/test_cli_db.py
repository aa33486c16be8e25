"""``wandb-mirror db upgrade`` through a real subprocess."""
from __future__ import annotations

import sqlite3
import subprocess
import sys

from wandb_mirror.store.schema import head_revision


def run_cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "wandb_mirror", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=cwd)


def test_db_upgrade_creates_then_is_idempotent(tmp_path):
    db = tmp_path / "store.db"
    first = run_cli("db", "upgrade", "--db", str(db))
    assert first.returncode == 0, first.stderr
    assert f"upgraded from empty to {head_revision()}" in first.stdout
    second = run_cli("db", "upgrade", "--db", str(db))
    assert second.returncode == 0 and "already at revision" in second.stdout


def test_db_upgrade_refuses_newer_store(tmp_path):
    db = tmp_path / "store.db"
    assert run_cli("db", "upgrade", "--db", str(db)).returncode == 0
    con = sqlite3.connect(db)
    con.execute("update alembic_version set version_num = 'zzzz9999'")
    con.commit()
    con.close()
    out = run_cli("db", "upgrade", "--db", str(db))
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and "newer version" in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_db_upgrade_bad_directory(tmp_path):
    out = run_cli("db", "upgrade", "--db", str(tmp_path / "missing" / "store.db"))
    assert out.returncode == 1 and "does not exist" in out.stderr


def test_debug_shows_traceback(tmp_path):
    out = run_cli("--debug", "db", "upgrade", "--db", str(tmp_path / "missing" / "s.db"))
    assert out.returncode == 1 and "Traceback" in out.stderr


def test_help_has_example():
    out = run_cli("db", "upgrade", "--help")
    assert out.returncode == 0 and "Example" in out.stdout
