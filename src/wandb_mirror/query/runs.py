"""Select and count a project's runs with a W&B filter and order."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Integer, Select, bindparam, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..errors import FilterError
from ..store.engine import translate_db_error
from ..store import values as V
from ..store.models import Run
from ..store.rows import fetch_text
from .filters import parse_run_filter
from .keys import KeySpec
from .order import TIE_BREAK, TYPE_RANK, compile_order, parse_order, rank_of, value_lookup
from .parse import Node
from .sql import CORE, RUN_VALUES, RUNS, RunValuesBackend, compile_node
from .sqlite_text import TEXT, Frag, join_and

__all__ = ["MAX_PAGING", "count_runs", "first_run_pks", "run_pks_statement", "runs_statement",
           "select_runs", "where_text"]

MAX_PAGING = 2**62
"""Largest accepted ``limit``/``offset`` (SQLite binds int64)."""


def _where(project_pk: int, node: Node, include_deleted: bool, *, correlated: bool = False,
           ns: Any = CORE) -> list[Any]:
    """The conditions on ``runs`` for the project's runs matching the parsed filter ``node``,
    in ``ns``'s spelling (:data:`~.sql.CORE` or :data:`~.sqlite_text.TEXT`)."""
    where = [ns.runs.project_pk == project_pk,
             compile_node(node, RunValuesBackend(correlated=correlated, ns=ns))]
    if not include_deleted:
        where.append(ns.runs.deleted_at.is_(None))
    return where


def where_text(project_pk: int, filters: Mapping[str, Any] | None,
               include_deleted: bool = False, *, correlated: bool = False) -> Frag:
    """The WHERE condition of :func:`run_pks_statement` as SQLite text (over ``runs``).

    Raises:
        FilterError: malformed filter.
    """
    return TEXT.and_(*_where(project_pk, parse_run_filter(filters), include_deleted,
                             correlated=correlated, ns=TEXT))


def _ordered(stmt: Any, project_pk: int, filters: Mapping[str, Any] | None,
             order: str | Sequence[str] | None, include_deleted: bool) -> Any:
    """``stmt`` restricted to the project's matching runs, in the order."""
    return (stmt.where(*_where(project_pk, parse_run_filter(filters), include_deleted))
            .order_by(*compile_order(order)))


def _check_paging(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= MAX_PAGING):
            raise FilterError(f"{name} must be a non-negative integer, not {value!r}",
                              f"${name}")


def runs_statement(
    project_pk: int,
    filters: Mapping[str, Any] | None = None,
    order: str | Sequence[str] | None = None,
    *,
    include_deleted: bool = False,
    limit: int | None = None,
    offset: int | None = None,
) -> Select[tuple[Run]]:
    """The ``select(Run)`` statement :func:`select_runs` executes (for callers that page).

    Raises:
        FilterError: malformed filter, order, limit or offset.
    """
    _check_paging(limit=limit, offset=offset)
    stmt = _ordered(select(Run), project_pk, filters, order, include_deleted)
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    return stmt


def run_pks_statement(
    project_pk: int,
    filters: Mapping[str, Any] | None = None,
    order: str | Sequence[str] | None = None,
    *,
    include_deleted: bool = False,
    limit: int | None = None,
) -> Select[tuple[int]]:
    """``SELECT runs.pk`` of :func:`runs_statement`'s runs, in its order.

    A Core statement over the ``runs`` table: executing it does not configure the ORM.

    Raises:
        FilterError: malformed filter, order or limit.
    """
    _check_paging(limit=limit)
    stmt = _ordered(select(RUNS.c.pk), project_pk, filters, order, include_deleted)
    return stmt if limit is None else stmt.limit(limit)


def first_run_pks(
    conn: Connection | Session,
    project_pk: int,
    filters: Mapping[str, Any] | None = None,
    order: str | Sequence[str] | None = None,
    *,
    limit: int,
    include_deleted: bool = False,
) -> list[int]:
    """The first ``limit`` pks of :func:`run_pks_statement` (the same pks in the same order),
    reading only what they need when the order is one ``config``/``summary_metrics`` key.

    Ordering every matching run by a summary metric costs two index lookups per match; a first
    page needs only the head of the order. So runs are read along the value index instead, one
    type class at a time in the order's rank order (e.g. ``-summary_metrics.loss``: dates,
    booleans, arrays, objects, strings, then numbers from the largest), each run at its *first*
    value row (the row :mod:`.order`'s lookup takes), filtered by correlated probes, and the
    runs whose value is missing, null or NaN last, ordered by the tie-break. Other orders run
    :func:`run_pks_statement` with ``LIMIT``.

    Raises:
        FilterError: malformed filter, order or limit.
        StoreError: the database failed.
    """
    _check_paging(limit=limit)
    keys = parse_order(order)
    node = parse_run_filter(filters)
    try:
        if len(keys) == 1 and keys[0][0].order_column is None and len(keys[0][0].paths) == 1:
            head = _first_by_value(conn, project_pk, node, keys[0][0], keys[0][1], limit,
                                   include_deleted)
            if head is not None:
                return head
        stmt = run_pks_statement(project_pk, filters, order, include_deleted=include_deleted,
                                 limit=limit)
        return list(conn.execute(stmt).scalars().all())
    except SQLAlchemyError as exc:
        raise translate_db_error(exc, f"selecting runs of project {project_pk}") from exc


_NUM_KINDS = (V.NUMBER, V.BOOL, V.DATE)
_FIRST_WINDOW, _WINDOW_PER_RUN, _WINDOW_GROWTH, _WINDOW_TRIES = 64, 4, 8, 2

# The kinds a (root, path) has, by skip-scanning the (root, path, kind, ...) index: one seek per
# kind instead of reading every row.
_KINDS_SQL = """
WITH RECURSIVE k(kind) AS (
  SELECT min(kind) FROM run_values WHERE root = :root AND path = :path
  UNION ALL
  SELECT (SELECT min(kind) FROM run_values WHERE root = :root AND path = :path AND kind > k.kind)
  FROM k WHERE k.kind IS NOT NULL)
SELECT kind FROM k WHERE kind IS NOT NULL"""


# Candidate rows ``o`` of the bound key and kind, NaN excluded (it ranks as missing); read from
# the (root, path, kind, num|txt) index alone. Fixed SQL text (no user input in it).
_CANDIDATE = f"""o.root = :seek_root AND o.path = :seek_path AND o.kind = :seek_kind
 AND NOT (o.kind = {V.NUMBER} AND o.num IS NULL)"""
# ``o`` is its run's value: the first row of (run, root, path, elem 0) in (kind, num, txt, id)
# order, the row the ORDER BY lookup of :mod:`.order` reads. One probe of the covering
# (run_pk, root, path, elem, kind, num, txt) index; it also proves ``o.elem = 0``.
_FIRST_ROW = """o.id = (SELECT f.id FROM run_values AS f
 WHERE f.run_pk = o.run_pk AND f.root = :seek_root AND f.path = :seek_path AND f.elem = 0
 ORDER BY f.kind, f.num, f.txt, f.id LIMIT 1)"""
# The run has no ranked value (missing, null or NaN): :func:`.order.rank_of` of that same first
# row is NULL (the SQLAlchemy path writes it as ``value_lookup(spec, rank_of(...)).is_(None)``).
_UNRANKED = (f"(SELECT CASE WHEN f.kind = {V.NUMBER} AND f.num IS NULL THEN NULL ELSE CASE f.kind "
             + " ".join(f"WHEN {k} THEN {r}" for k, r in TYPE_RANK.items())
             + """ ELSE NULL END END FROM run_values AS f
 WHERE f.run_pk = runs.pk AND f.root = :seek_root AND f.path = :seek_path AND f.elem = 0
 ORDER BY f.kind, f.num, f.txt, f.id LIMIT 1) IS NULL""")
_TIE_BREAK_TEXT = ", ".join((f"{TEXT.runs.created_ts.sql} IS NULL",
                             f"{TEXT.runs.created_ts.sql} ASC", f"{TEXT.runs.pk.sql} ASC"))
""":data:`.order.TIE_BREAK` as SQLite text."""
_NAMED = re.compile(r":(\w+)")


def _positional(sql: str, params: Mapping[str, Any]) -> Frag:
    """Fixed SQL with ``:name`` parameters as a :class:`Frag` with ``?`` ones (so it can be
    joined with compiled filter text)."""
    order: list[Any] = []

    def take(m: re.Match[str]) -> str:
        order.append(params[m.group(1)])
        return "?"

    return Frag(_NAMED.sub(take, sql), tuple(order))


SQLITE_TEXT = True
"""Run :func:`first_run_pks`'s statements on SQLite as text (False: as SQLAlchemy statements,
as on other dialects; the tests compare the two)."""


def _text_on(conn: Connection | Session) -> bool:
    bind = conn if isinstance(conn, Connection) else conn.get_bind()
    return SQLITE_TEXT and bind.dialect.name == "sqlite"


class _ValueSeek:
    """The statements of :func:`first_run_pks`'s walk along the value index for one key.

    On SQLite they are SQL text run on the DBAPI cursor (the filter compiled by
    :data:`~.sqlite_text.TEXT`); elsewhere SQLAlchemy statements."""

    def __init__(self, conn: Connection | Session, project_pk: int, node: Node, spec: KeySpec,
                 ascending: bool, include_deleted: bool) -> None:
        self.conn, self.project_pk, self.node, self.spec = conn, project_pk, node, spec
        self.ascending, self.include_deleted = ascending, include_deleted
        self.sqlite = _text_on(conn)
        # SQLite's default null placement (first ascending, last descending) is the order's
        # (value NULLS FIRST / NULLS LAST) and lets the index supply the order.
        self.direction = "ASC" if ascending else "DESC"
        self._statements: dict[Any, Any] = {}

    def params(self, **more: Any) -> dict[str, Any]:
        return {"seek_root": self.spec.root, "seek_path": self.spec.paths[0], **more}

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[Any]:
        """Fixed SQL (``:name`` parameters) run on the connection."""
        if self.sqlite:
            frag = _positional(sql, params)
            return fetch_text(self.conn, frag.sql, frag.params)
        return list(self.conn.execute(text(sql), params))

    def where(self, correlated: bool) -> Frag:
        """The project/filter/deleted condition as SQLite text (made once per variant)."""
        key = ("where", correlated)
        if key not in self._statements:
            self._statements[key] = TEXT.and_(*_where(
                self.project_pk, self.node, self.include_deleted, correlated=correlated, ns=TEXT))
        return self._statements[key]  # type: ignore[no-any-return]

    def kinds(self) -> set[int]:
        return {k for (k,) in self.rows(_KINDS_SQL, {"root": self.spec.root,
                                                      "path": self.spec.paths[0]})}

    @staticmethod
    def _value(kind: int) -> str:
        """The column holding the sort value of this kind (see ``sql.sort_value``)."""
        return "num" if kind in _NUM_KINDS else "txt"

    def boundary(self, kind: int, window: int) -> tuple[bool, Any]:
        """``(True, value)`` of the ``window``-th candidate row of this kind in the order
        (array elements and non-first rows too: any value bounds the scan correctly), or
        ``(False, None)`` when there are fewer rows."""
        value = self._value(kind)
        rows = self.rows(f"SELECT o.{value} FROM run_values AS o WHERE {_CANDIDATE}"
                         f" ORDER BY o.{value} {self.direction} LIMIT 1 OFFSET :seek_skip",
                         self.params(seek_kind=kind, seek_skip=window - 1))
        return (False, None) if not rows else (True, rows[0][0])

    def head(self, kind: int, limit: int, bound: tuple[bool, Any]) -> list[int]:
        """The first ``limit`` matching runs whose first value row has this kind, valued up to
        ``bound``'s value (ties included) when there is one."""
        value = self._value(kind)
        bounded = bound[0]
        cond = f"{_CANDIDATE} AND runs.pk = o.run_pk AND {_FIRST_ROW}"
        if bounded:
            cond += f" AND o.{value} {'<=' if self.ascending else '>='} :seek_bound"
        params = self.params(seek_kind=kind, seek_head=limit)
        if bounded:
            params["seek_bound"] = bound[1]
        if self.sqlite:
            seek = _positional(f"SELECT runs.pk FROM run_values AS o, runs WHERE {cond}", params)
            where = self.where(correlated=True)
            return [pk for (pk,) in fetch_text(
                self.conn, f"{seek.sql} AND {where.sql} ORDER BY o.{value} {self.direction}, "
                           f"{_TIE_BREAK_TEXT} LIMIT ?", seek.params + where.params + (limit,))]
        key = ("head", value, bounded)
        if key not in self._statements:
            self._statements[key] = (
                select(RUNS.c.pk).select_from(text("run_values AS o"))
                .where(text(cond), *_where(self.project_pk, self.node, self.include_deleted,
                                           correlated=True))
                .order_by(text(f"o.{value} {self.direction}"), *TIE_BREAK)
                .limit(bindparam("seek_head", type_=Integer)))
        return list(self.conn.execute(self._statements[key], params).scalars().all())

    def unranked(self, limit: int) -> list[int]:
        """The first ``limit`` matching runs whose value is missing, null or NaN (the rank
        lookup is NULL), ordered by the tie-break alone."""
        if self.sqlite:
            where = self.where(correlated=False)
            rank = _positional(_UNRANKED, self.params())
            return [pk for (pk,) in fetch_text(
                self.conn, f"SELECT runs.pk FROM runs WHERE {where.sql} AND {rank.sql}"
                           f" ORDER BY {_TIE_BREAK_TEXT} LIMIT ?",
                where.params + rank.params + (limit,))]
        rank = value_lookup(self.spec, rank_of(RUN_VALUES.c))
        rest = (select(RUNS.c.pk)
                .where(*_where(self.project_pk, self.node, self.include_deleted),
                       rank.is_(None))
                .order_by(*TIE_BREAK).limit(limit))
        return list(self.conn.execute(rest).scalars().all())

    def segment(self, kind: int, limit: int) -> list[int] | None:
        """The first ``limit`` matching runs whose value has this kind, in order; None when
        that needs reading more than a bounded window of the index (few runs match)."""
        window = _FIRST_WINDOW + _WINDOW_PER_RUN * limit
        for _ in range(_WINDOW_TRIES):
            bound = self.boundary(kind, window)
            # The head of the runs valued up to the window's last value (ties included) is
            # exact: every other run sorts after all of them. The window only bounds the scan.
            got = self.head(kind, limit, bound)
            if len(got) >= limit or not bound[0]:
                return got
            window *= _WINDOW_GROWTH
        return None


def _first_by_value(conn: Connection | Session, project_pk: int, node: Node, spec: KeySpec,
                    ascending: bool, limit: int, include_deleted: bool) -> list[int] | None:
    """:func:`first_run_pks` along the value index (None: use the full statement)."""
    if limit == 0:
        return []
    seek = _ValueSeek(conn, project_pk, node, spec, ascending, include_deleted)
    out: list[int] = []
    for kind in sorted(seek.kinds() & TYPE_RANK.keys(), key=TYPE_RANK.__getitem__,
                       reverse=not ascending):
        got = seek.segment(kind, limit - len(out))
        if got is None:
            return None
        out.extend(got)
        if len(out) >= limit:
            return out[:limit]
    out.extend(seek.unranked(limit - len(out)))
    return out


def select_runs(
    session_or_conn: Session | Connection,
    project_pk: int,
    filters: Mapping[str, Any] | None = None,
    order: str | Sequence[str] | None = None,
    *,
    include_deleted: bool = False,
    limit: int | None = None,
    offset: int | None = None,
) -> list[Any]:
    """A project's runs matching ``filters``, in ``order``.

    Args:
        session_or_conn: an ORM Session (returns ``Run`` objects) or a Connection (returns rows
            of the ``runs`` table).
        project_pk: the project's primary key.
        filters: W&B filter dict (see ``docs/filters.md``); None matches all.
        order: W&B order string or list of them; None means ``"+created_at"``.
        include_deleted: also return runs marked deleted upstream.
        limit, offset: paging.

    Raises:
        FilterError: malformed filter/order (nothing is executed).
        StoreError: the database failed.
    """
    stmt = runs_statement(project_pk, filters, order, include_deleted=include_deleted,
                          limit=limit, offset=offset)
    try:
        if isinstance(session_or_conn, Session):
            return list(session_or_conn.scalars(stmt))
        return list(session_or_conn.execute(stmt))
    except SQLAlchemyError as exc:
        raise translate_db_error(exc, f"selecting runs of project {project_pk}") from exc


def count_runs(
    session_or_conn: Session | Connection,
    project_pk: int,
    filters: Mapping[str, Any] | None = None,
    *,
    include_deleted: bool = False,
) -> int:
    """Number of a project's runs matching ``filters`` (upstream's ``runCount(filters)``).

    Raises:
        FilterError: malformed filter.
        StoreError: the database failed.
    """
    stmt = select(func.count()).select_from(RUNS).where(
        *_where(project_pk, parse_run_filter(filters), include_deleted))
    try:
        return int(session_or_conn.execute(stmt).scalar_one())
    except SQLAlchemyError as exc:
        raise translate_db_error(exc, f"counting runs of project {project_pk}") from exc
