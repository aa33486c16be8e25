"""The store generation moves on every commit, also when the files look unchanged."""
from __future__ import annotations

import os
import sqlite3

from wandb_mirror.store import open_store
from wandb_mirror.store.generation import StoreGeneration


def test_commits_within_one_clock_tick_and_equal_wal_sizes_still_move_it(tmp_path):
    engine = open_store(tmp_path / "g.db")
    gen = StoreGeneration(engine)
    db = str(tmp_path / "g.db")
    writer = sqlite3.connect(db)
    writer.execute("CREATE TABLE t (v TEXT)")
    writer.execute("INSERT INTO t VALUES ('aaaa')")
    writer.commit()

    def rewrite(value: str) -> None:
        writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL restarts from its start
        writer.execute("UPDATE t SET v = ?", (value,))
        writer.commit()

    rewrite("bbbb")
    first = gen.current()
    stats = [os.stat(p) for p in (db, db + "-wal")]
    rewrite("cccc")  # same row size: the WAL ends at the same length
    for path, st in zip((db, db + "-wal"), stats):  # a coarse clock: the same file times
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert [(s.st_ino, s.st_mtime_ns, s.st_size) for s in (os.stat(db), os.stat(db + "-wal"))] \
        == [(s.st_ino, s.st_mtime_ns, s.st_size) for s in stats], "the files must look unchanged"
    second = gen.current()
    assert second != first
    assert gen.current() == second  # and it stays put while nothing is written
    writer.close()
    engine.dispose()


def test_a_swapped_store_file_moves_it(tmp_path):
    engine = open_store(tmp_path / "a.db")
    gen = StoreGeneration(engine)
    before = gen.current()
    open_store(tmp_path / "b.db").dispose()
    os.replace(tmp_path / "b.db", tmp_path / "a.db")
    assert gen.current() != before
    engine.dispose()


def test_no_token_for_stores_that_are_not_files():
    from sqlalchemy import create_engine

    assert StoreGeneration(create_engine("sqlite://")).current() is None
