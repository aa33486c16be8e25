"""Reading pages of whole ``runs`` rows with as little per-query overhead as possible.

Why: a page of runs (served, or listed by the Api) is "these 50 run keys, every column".
Through SQLAlchemy's statement machinery (cache key, expanding ``IN`` parameters, result
processing) that query cost ~2.2 ms here against ~0.9 ms for the same SQL on the DBAPI cursor.
So the SQL text is made once per (dialect, number of keys) from the table's columns (written
directly for SQLite, compiled by SQLAlchemy for other dialects; the ORM mappers are never
configured, which would cost a process's first listing ~30-50 ms), and executed on the DBAPI
cursor of the session's connection.

Rows read like ORM ``Run`` objects by attribute (``row.run_id``, ``row.group``...), and by
position in the order of :data:`RUN_ATTRS`. The only column whose driver value differs from
the ORM's is the boolean ``read_only`` (SQLite returns 0/1), normalised here.
"""
from __future__ import annotations

from collections.abc import Sequence
from threading import Lock
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from .models import Run

__all__ = ["RUN_ATTRS", "RunRow", "run_rows"]

_COLUMNS = tuple(Run.__mapper__.columns.items())  # (attribute, column); no mapper configuration
RUN_ATTRS: tuple[str, ...] = tuple(key for key, _ in _COLUMNS)
"""Every ``Run`` column attribute, in the order rows hold them."""

RunRow = NamedTuple("RunRow", [(name, Any) for name in RUN_ATTRS])  # type: ignore[misc]
"""A whole ``runs`` row: attribute access like ``Run``, a plain tuple underneath."""

_MAX_CACHED_KEYS = 1024
_SQL: dict[tuple[str, int], str] = {}
_LOCK = Lock()
_READ_ONLY = RUN_ATTRS.index("read_only")


def _sql(dialect: Any, count: int) -> str:
    key = (dialect.name, count)
    text = _SQL.get(key)
    if text is None:
        table = Run.__table__
        if dialect.paramstyle == "qmark":  # SQLite: written here, SQLAlchemy's first compile
            quote = dialect.identifier_preparer.quote  # costs ~8 ms of a process's first page
            listed = ", ".join(f"{table.name}.{quote(column.name)} AS {quote(key)}"
                               for key, column in _COLUMNS)
            text = (f"SELECT {listed} FROM {table.name} "
                    f"WHERE {table.name}.pk IN ({', '.join('?' * count)})")
        else:
            params = [bindparam(f"pk{i}") for i in range(count)]
            stmt = select(*[column.label(key) for key, column in _COLUMNS]) \
                .where(table.c.pk.in_(params))
            compiled = stmt.compile(dialect=dialect)
            positions = getattr(compiled, "positiontup", None)
            if dialect.positional and list(positions or []) != [f"pk{i}" for i in range(count)]:
                raise RuntimeError("unexpected parameter order in compiled SQL")  # pragma: no cover
            text = compiled.string
        if count <= _MAX_CACHED_KEYS:
            with _LOCK:
                _SQL[key] = text
    return text


def run_rows(session: Session | Connection, pks: Sequence[int]) -> list[RunRow]:
    """Whole rows of the runs ``pks`` (in no particular order; missing keys are skipped)."""
    if not pks:
        return []
    conn = session if isinstance(session, Connection) else session.connection()  # in its transaction
    dialect = conn.dialect
    params: Any = (tuple(pks) if dialect.positional
                   else {f"pk{i}": pk for i, pk in enumerate(pks)})
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_sql(dialect, len(pks)), params)
        fetched = cursor.fetchall()
    finally:
        cursor.close()
    out = []
    for values in fetched:
        flag = values[_READ_ONLY]
        if flag is not None and type(flag) is not bool:
            values = values[:_READ_ONLY] + (bool(flag),) + values[_READ_ONLY + 1:]
        out.append(RunRow._make(values))
    return out
