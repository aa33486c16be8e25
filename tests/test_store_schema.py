"""Schema: migrations equal the ORM, upgrade/downgrade round trip, newer stores refused."""
from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import zipfile

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from wandb_mirror.errors import SchemaError, StoreError
from wandb_mirror.store import open_store, session_scope
from wandb_mirror.store.engine import make_engine
from wandb_mirror.store.models import Base
from wandb_mirror.store.runs import upsert_project
from wandb_mirror.store.schema import current_revision, downgrade, head_revision, upgrade


def _diff(engine):
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)


def test_upgrade_empty_database_matches_orm(tmp_path):
    engine = open_store(tmp_path / "s.db")
    assert current_revision(engine) == head_revision()
    assert _diff(engine) == []


def test_upgrade_downgrade_upgrade(tmp_path):
    engine = make_engine(tmp_path / "s.db")
    assert upgrade(engine) == head_revision()
    assert downgrade(engine, "base") is None
    with engine.connect() as conn:
        tables = {r[0] for r in conn.exec_driver_sql(
            "select name from sqlite_master where type='table'")}
    assert tables <= {"alembic_version"}
    assert upgrade(engine) == head_revision()
    assert _diff(engine) == []


def test_open_twice_is_idempotent_and_keeps_data(tmp_path):
    path = tmp_path / "s.db"
    engine = open_store(path)
    with session_scope(engine) as s:
        upsert_project(s, "e", "p")
    engine.dispose()
    engine = open_store(path)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select entity, name from projects").fetchall() == [("e", "p")]
    assert _diff(engine) == []


def test_newer_revision_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "s.db"
    open_store(path).dispose()
    con = sqlite3.connect(path)
    con.execute("update alembic_version set version_num = 'f00dfeed9999'")
    con.commit()
    con.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(SchemaError, match="newer version"):
        open_store(path)
    with pytest.raises(SchemaError, match="f00dfeed9999"):
        upgrade(make_engine(path))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_foreign_tables_without_revision_refused(tmp_path):
    path = tmp_path / "s.db"
    con = sqlite3.connect(path)
    con.execute("create table runs (x)")
    con.close()
    with pytest.raises(SchemaError, match="no schema revision"):
        open_store(path)


def test_sqlite_pragmas(tmp_path):
    engine = open_store(tmp_path / "s.db")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("pragma journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("pragma foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("pragma busy_timeout").scalar() >= 1000


def test_reader_not_blocked_by_writer(tmp_path):
    """An exclusive write transaction (which blocks readers without WAL) leaves reads working."""
    engine = open_store(tmp_path / "s.db")
    with session_scope(engine) as s:
        upsert_project(s, "e", "p")
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("BEGIN EXCLUSIVE")
        raw.driver_connection.execute(
            "insert into projects (entity, name, is_benchmark) values ('e','q',0)")
        reader = sqlite3.connect(tmp_path / "s.db", timeout=0.1)
        assert reader.execute("select count(*) from projects").fetchone() == (1,)
        reader.close()
        raw.driver_connection.execute("ROLLBACK")
    finally:
        raw.close()


def test_session_scope_translates_driver_errors(tmp_path):
    engine = open_store(tmp_path / "s.db")
    with pytest.raises(StoreError, match="UNIQUE constraint failed"):
        with session_scope(engine, "adding projects") as s:
            s.execute(Base.metadata.tables["projects"].insert(), [
                {"entity": "e", "name": "p", "is_benchmark": False},
                {"entity": "e", "name": "p", "is_benchmark": False}])
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select count(*) from projects").scalar() == 0


def test_bad_url_is_a_store_error():
    with pytest.raises(StoreError):
        make_engine("nosuchdialect://x")


def test_wheel_ships_migrations(tmp_path):
    """Build the wheel and check the migrations are inside, so an installed copy can upgrade."""
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(root)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("wandb_mirror-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "wandb_mirror/migrations/env.py" in names
    assert "wandb_mirror/migrations/script.py.mako" in names
    assert any(n.startswith("wandb_mirror/migrations/versions/0001") for n in names)
    assert "wandb_mirror/server/schema.graphql" in names
    assert "wandb_mirror/py.typed" in names


def test_installed_wheel_upgrades_its_own_database(tmp_path):
    """A non-editable install finds its migrations inside the package and upgrades a store."""
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheel_dir), str(root)], check=True, timeout=300,
                   capture_output=True)
    wheel = next(wheel_dir.glob("wandb_mirror-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, timeout=300, capture_output=True)
    code = ("import sys; from wandb_mirror.store.schema import migrations_dir, open_store, "
            "current_revision; print(migrations_dir()); "
            "print(current_revision(open_store(sys.argv[1])))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s.db")], cwd=tmp_path,
                         env={**__import__("os").environ, "PYTHONPATH": str(target)},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    where, revision = out.stdout.split()
    assert where.startswith(str(target))
    assert revision == head_revision()


def test_older_store_is_upgraded_on_open_with_its_data(tmp_path):
    path = tmp_path / "s.db"
    engine = make_engine(path)
    upgrade(engine, "0001")
    with session_scope(engine) as s:
        upsert_project(s, "e", "old")
    engine.dispose()
    engine = open_store(path)
    assert current_revision(engine) == head_revision() != "0001"
    assert _diff(engine) == []
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select name from projects").scalar() == "old"


def test_every_revision_downgrades_and_upgrades(tmp_path):
    from alembic.script import ScriptDirectory

    from wandb_mirror.store.schema import alembic_config

    engine = make_engine(tmp_path / "s.db")
    revisions = [r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()]
    upgrade(engine)
    for rev in revisions[1:]:  # newest first: step down one at a time, then back up
        downgrade(engine, rev)
        assert current_revision(engine) == rev
    upgrade(engine)
    assert _diff(engine) == []
