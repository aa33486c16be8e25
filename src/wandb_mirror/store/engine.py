"""One engine factory and one session helper for every store.

SQLite gets WAL (readers never block the writer), foreign keys, a busy timeout and the
``wm_regexp`` SQL function here and only here; any other SQLAlchemy URL is passed through.
"""
from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from ..errors import StoreError

__all__ = ["BUSY_TIMEOUT_MS", "make_engine", "read_scope", "session_scope", "translate_db_error"]

BUSY_TIMEOUT_MS = 30_000

_RE_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


@lru_cache(maxsize=512)
def _compiled(pattern: str, options: str) -> re.Pattern[str]:
    flags = 0
    for ch in options or "":
        flags |= _RE_FLAGS.get(ch, 0)
    return re.compile(pattern, flags)


def _sql_regexp(pattern: str | None, options: str | None, value: object) -> int | None:
    """``wm_regexp(pattern, options, value)``: 1 when ``re.search`` finds the pattern in a string."""
    if pattern is None or not isinstance(value, str):
        return 0
    return 1 if _compiled(pattern, options or "").search(value) else 0


def _on_sqlite_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    # Let SQLAlchemy manage transactions explicitly (pysqlite's implicit BEGIN is off).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys = ON")
    mode = cur.execute("PRAGMA journal_mode").fetchone()[0]
    if str(mode).lower() not in ("wal", "memory"):
        cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    # Reads of the value index and history chunks dominate; a 128 MiB page cache and memory
    # mapping halve query times (bench/query_bench.py).
    cur.execute("PRAGMA cache_size = -131072")
    cur.execute("PRAGMA mmap_size = 1073741824")
    cur.close()
    dbapi_conn.create_function("wm_regexp", 3, _sql_regexp, deterministic=True)


def _on_sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
    conn.exec_driver_sql("BEGIN")


def make_engine(target: str | Path | Engine, *, echo: bool = False) -> Engine:
    """Return an engine for a file path, a SQLAlchemy URL, or an existing engine.

    Args:
        target: ``/path/to/store.db``, ``sqlite:///...``, ``postgresql://...`` or an Engine.
        echo: log SQL statements.

    Raises:
        StoreError: the URL cannot be parsed or its driver is not installed.
    """
    if isinstance(target, Engine):
        return target
    text = str(target)
    if "://" not in text:
        path = Path(text).expanduser()
        if path.parent and not path.parent.exists():
            raise StoreError(f"cannot create store {path}: directory {path.parent} does not exist")
        text = f"sqlite:///{path}"
    try:
        url = make_url(text)
        engine = create_engine(url, echo=echo)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(f"cannot open store {target!r}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def translate_db_error(exc: BaseException, doing: str) -> StoreError:
    """Turn a driver or SQLAlchemy error into a StoreError that says what was being done."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        detail = str(exc.orig)
    else:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    hint = ""
    if "locked" in detail or "busy" in detail:
        hint = "; another process holds a write lock on the store, try again when it finishes"
    elif "readonly" in detail or "read-only" in detail:
        hint = "; the store file or its directory is not writable"
    return StoreError(f"store error while {doing}: {detail}{hint}")


@contextmanager
def session_scope(engine: Engine, doing: str = "accessing the store") -> Iterator[Session]:
    """A session that commits on success, rolls back on error, and raises StoreError on driver errors."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        raise translate_db_error(exc, doing) from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def read_scope(engine: Engine, doing: str = "reading the store") -> Iterator[Connection]:
    """A connection in one transaction, for reads: committed on success, rolled back on error,
    driver errors raised as StoreError. No ORM Session: a plain read pays neither its set-up
    (~1 ms for a process's first one) nor its identity map."""
    try:
        with engine.connect() as conn, conn.begin():
            yield conn
    except SQLAlchemyError as exc:
        raise translate_db_error(exc, doing) from exc
