"""store.rows: whole run and user rows by key, equal to what the ORM loads; plain text reads
in a read scope."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from wandb_mirror.errors import StoreError
from wandb_mirror.store import rows as rr
from wandb_mirror.store.engine import read_scope
from wandb_mirror.store.models import Project, ProjectSync, Run, User
from wandb_mirror.store.status import project_sync_state


def _orm(session, pks):
    return {r.pk: r for r in session.scalars(select(Run).where(Run.pk.in_(pks)))}


def test_rows_equal_the_orm_rows_column_for_column(synth_store):
    engine, _ = synth_store
    with Session(engine) as s:
        pks = list(s.scalars(select(Run.pk).order_by(Run.pk)))
        rows = rr.run_rows(s, pks[::-1])
        orm = _orm(s, pks)
        assert sorted(r.pk for r in rows) == pks
        for row in rows:
            for name in rr.RUN_ATTRS:
                want, got = getattr(orm[row.pk], name), getattr(row, name)
                assert got == want and type(got) is type(want), (name, got, want)
        assert all(type(r.read_only) is bool for r in rows)  # SQLite hands the driver 0/1


def test_missing_keys_are_skipped_and_empty_is_empty(synth_store):
    engine, _ = synth_store
    with Session(engine) as s:
        pk = s.scalar(select(Run.pk).limit(1))
        assert [r.pk for r in rr.run_rows(s, [pk, 10**9])] == [pk]
        assert rr.run_rows(s, []) == []


def test_sql_text_is_cached_per_key_count_but_large_lists_are_not(synth_store):
    engine, _ = synth_store
    with Session(engine) as s:
        pks = list(s.scalars(select(Run.pk)))
        rr.run_rows(s, pks[:3])
        assert ("runs", "sqlite", 3) in rr._SQL
        many = pks + [10**9 + i for i in range(rr._MAX_CACHED_KEYS)]
        assert len(rr.run_rows(s, many)) == len(pks)
        assert ("runs", "sqlite", len(many)) not in rr._SQL


def test_sqlite_text_equals_what_sqlalchemy_compiles(synth_store):
    """The hand-written SQLite text and SQLAlchemy's compilation return the same rows."""
    from sqlalchemy import bindparam

    engine, _ = synth_store
    with Session(engine) as s:
        pks = list(s.scalars(select(Run.pk).limit(5)))
        conn = s.connection()
        mine = conn.exec_driver_sql(rr._sql(rr._SHAPES[Run], conn.dialect, len(pks)),
                                    tuple(pks)).all()
        table = Run.__table__
        stmt = select(*[c.label(k) for k, c in rr._SHAPES[Run].columns]).where(
            table.c.pk.in_([bindparam(f"p{i}", pk) for i, pk in enumerate(pks)]))
        theirs = conn.execute(stmt).all()
        assert list(mine[0]._fields) == list(rr.RUN_ATTRS) == list(theirs[0]._fields)
        assert sorted(map(tuple, mine)) == sorted(
            tuple(int(v) if isinstance(v, bool) else v for v in row) for row in theirs)


def test_user_rows_equal_the_orm_users(synth_store):
    engine, _ = synth_store
    with Session(engine) as s:
        users = {u.pk: u for u in s.scalars(select(User))}
        got = rr.user_rows(s, [*users, None, 10**9])
        assert sorted(got) == sorted(users)
        for pk, row in got.items():
            assert all(getattr(row, a) == getattr(users[pk], a) for a in rr.attributes(User))
        assert rr.user_rows(s, [None]) == {}


def test_text_reads_share_one_read_scope_and_fail_as_store_errors(synth_store):
    engine, result = synth_store
    with read_scope(engine) as conn:
        assert conn.in_transaction()
        (count,), = rr.fetch_named(conn, "SELECT count(*) FROM runs WHERE pk > :pk", {"pk": 0})
        assert count == len(rr.fetch_text(conn, "SELECT pk FROM runs WHERE pk > ?", (0,))) > 0
    with pytest.raises(StoreError, match="no such table"):
        with read_scope(engine) as conn:
            rr.fetch_text(conn, "SELECT * FROM nosuch", ())
    with pytest.raises(StoreError, match="no such table"):
        with read_scope(engine, "reading nothing") as conn:
            conn.execute(text("SELECT * FROM nosuch"))


def test_project_sync_state(synth_store):
    engine, _ = synth_store
    with Session(engine) as s:
        project = s.scalars(select(Project)).first()
        sync = s.get(ProjectSync, project.pk)
        entity, name, pk = project.entity, project.name, project.pk
        last = sync.last_sync_at if sync is not None else None
    assert project_sync_state(engine, entity, name) == (pk, last)
    assert project_sync_state(engine, entity, name + "-nosuch") == (None, None)
