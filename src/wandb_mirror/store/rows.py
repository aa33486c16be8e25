"""Reading whole rows by primary key with as little per-query overhead as possible.

Why: a page of runs (served, or listed by the Api) is "these 50 run keys, every column", and
their users likewise. Through SQLAlchemy's statement machinery (cache key, expanding ``IN``
parameters, result processing) the runs query cost ~2.2 ms here against ~0.9 ms for the same
SQL on the DBAPI cursor. So the SQL text is made once per (table, dialect, number of keys) from
the table's columns (written directly for SQLite, compiled by SQLAlchemy for other dialects;
the ORM mappers are never configured, which would cost a process's first listing ~30-50 ms),
and executed on the DBAPI cursor of the session's connection.

Rows are named tuples that read like the ORM objects by attribute (``row.run_id``,
``row.group``...), and by position in the order of :func:`attributes`. The only driver values
that differ from the ORM's are booleans (SQLite returns 0/1), normalised here.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from threading import Lock
from typing import Any, NamedTuple

from sqlalchemy import Boolean, Connection, bindparam, select, text
from sqlalchemy.orm import Session

from .engine import translate_db_error
from .models import Run, User

__all__ = ["RUN_ATTRS", "RunRow", "attributes", "fetch_named", "fetch_text", "rows_by_pk",
           "run_rows", "user_rows"]


class _Shape:
    """What reading one model's rows needs: its columns, row type and boolean positions."""

    def __init__(self, model: Any) -> None:
        self.table = model.__table__
        self.columns = tuple(model.__mapper__.columns.items())  # no mapper configuration
        self.attrs = tuple(key for key, _ in self.columns)
        self.row = NamedTuple(f"{model.__name__}Row",  # type: ignore[misc]
                              [(name, Any) for name in self.attrs])
        self.booleans = tuple(i for i, (_, col) in enumerate(self.columns)
                              if isinstance(col.type, Boolean))


_SHAPES: dict[Any, _Shape] = {model: _Shape(model) for model in (Run, User)}
_MAX_CACHED_KEYS = 1024
_SQL: dict[tuple[str, str, int], str] = {}
_LOCK = Lock()


def attributes(model: Any) -> tuple[str, ...]:
    """The column attributes of ``model``, in the order its rows hold them."""
    return _SHAPES[model].attrs


RUN_ATTRS: tuple[str, ...] = attributes(Run)
RunRow: Any = _SHAPES[Run].row
"""A whole ``runs`` row: attribute access like ``Run``, a plain tuple underneath."""


def _sql(shape: _Shape, dialect: Any, count: int) -> str:
    key = (shape.table.name, dialect.name, count)
    text = _SQL.get(key)
    if text is None:
        table = shape.table
        if dialect.paramstyle == "qmark":  # SQLite: written here, SQLAlchemy's first compile
            # costs ~8 ms of a process's first page; identifiers from the models, always quoted
            listed = ", ".join(f'{table.name}."{column.name}" AS "{attr}"'
                               for attr, column in shape.columns)
            text = (f"SELECT {listed} FROM {table.name} "
                    f"WHERE {table.name}.pk IN ({', '.join('?' * count)})")
        else:
            params = [bindparam(f"pk{i}") for i in range(count)]
            stmt = select(*[column.label(attr) for attr, column in shape.columns]) \
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


def _connection(session: Session | Connection) -> Connection:
    """The connection of ``session``, in its transaction (begun as ``execute`` would)."""
    if isinstance(session, Connection):
        return session
    return session.connection()


def fetch_text(session: Session | Connection, sql: str, params: Any) -> list[tuple[Any, ...]]:
    """Every row of ``sql`` (in the driver's parameter style) run on the DBAPI cursor of the
    session's connection, in its transaction: no statement cache, compilation or result
    processing (rows are the driver's tuples).

    Raises:
        StoreError: the database failed.
    """
    conn = _connection(session)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()  # type: ignore[no-any-return]
    except conn.dialect.loaded_dbapi.Error as exc:
        raise translate_db_error(exc, "reading the store") from exc
    finally:
        cursor.close()


def fetch_named(session: Session | Connection, sql: str,
                params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Every row of fixed SQL text with ``:name`` parameters: on SQLite through the DBAPI
    cursor (:func:`fetch_text`; the driver takes ``:name`` itself), elsewhere through
    SQLAlchemy's ``text()``.

    Raises:
        StoreError: the database failed (SQLite; elsewhere SQLAlchemy's error propagates).
    """
    conn = _connection(session)
    if conn.dialect.name == "sqlite":
        return fetch_text(conn, sql, params)
    return [tuple(row) for row in conn.execute(text(sql), params)]


def rows_by_pk(session: Session | Connection, model: Any, pks: Sequence[int]) -> list[Any]:
    """Whole rows of ``model`` (``Run`` or ``User``) for ``pks``, in no particular order;
    missing keys are skipped."""
    if not pks:
        return []
    shape = _SHAPES[model]
    dialect = _connection(session).dialect
    params: Any = (tuple(pks) if dialect.positional
                   else {f"pk{i}": pk for i, pk in enumerate(pks)})
    fetched = fetch_text(session, _sql(shape, dialect, len(pks)), params)
    make = shape.row._make
    if not shape.booleans:
        return [make(values) for values in fetched]
    out = []
    for values in fetched:
        if any(values[i] is not None and type(values[i]) is not bool for i in shape.booleans):
            values = list(values)
            for i in shape.booleans:
                if values[i] is not None:
                    values[i] = bool(values[i])
        out.append(make(values))
    return out


def run_rows(session: Session | Connection, pks: Sequence[int]) -> list[Any]:
    """Whole ``runs`` rows of ``pks`` (:data:`RunRow`), in no particular order."""
    return rows_by_pk(session, Run, pks)


def user_rows(session: Session | Connection, pks: Iterable[int | None]) -> dict[int, Any]:
    """The ``users`` rows of ``pks`` (None skipped) by pk, with ``User``'s attribute names."""
    wanted = sorted({pk for pk in pks if pk is not None})
    return {row.pk: row for row in rows_by_pk(session, User, wanted)}
