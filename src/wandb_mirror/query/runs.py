"""Select and count a project's runs with a W&B filter and order."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Integer, Select, bindparam, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..errors import FilterError
from ..store.engine import translate_db_error
from ..store import values as V
from ..store.models import Run
from .filters import compile_run_filter
from .keys import KeySpec
from .order import TIE_BREAK, TYPE_RANK, compile_order, parse_order, rank_of, value_lookup
from .sql import RUN_VALUES, RUNS

__all__ = ["MAX_PAGING", "count_runs", "first_run_pks", "run_pks_statement", "runs_statement",
           "select_runs"]

MAX_PAGING = 2**62
"""Largest accepted ``limit``/``offset`` (SQLite binds int64)."""


def _where(project_pk: int, filters: Mapping[str, Any] | None, include_deleted: bool, *,
           correlated: bool = False) -> list[Any]:
    where = [RUNS.c.project_pk == project_pk,
             compile_run_filter(filters, correlated=correlated)]
    if not include_deleted:
        where.append(RUNS.c.deleted_at.is_(None))
    return where


def _ordered(stmt: Any, project_pk: int, filters: Mapping[str, Any] | None,
             order: str | Sequence[str] | None, include_deleted: bool) -> Any:
    """``stmt`` restricted to the project's matching runs, in the order."""
    return stmt.where(*_where(project_pk, filters, include_deleted)).order_by(*compile_order(order))


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
    try:
        if len(keys) == 1 and keys[0][0].order_column is None and len(keys[0][0].paths) == 1:
            head = _first_by_value(conn, project_pk, filters, keys[0][0], keys[0][1], limit,
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
_KINDS_SQL = text("""
WITH RECURSIVE k(kind) AS (
  SELECT min(kind) FROM run_values WHERE root = :root AND path = :path
  UNION ALL
  SELECT (SELECT min(kind) FROM run_values WHERE root = :root AND path = :path AND kind > k.kind)
  FROM k WHERE k.kind IS NOT NULL)
SELECT kind FROM k WHERE kind IS NOT NULL""")


# Candidate rows ``o`` of the bound key and kind, NaN excluded (it ranks as missing); read from
# the (root, path, kind, num|txt) index alone. Fixed SQL text (no user input in it): a first
# listing in a process pays to build and compile only the filter, not this skeleton.
_CANDIDATE = f"""o.root = :seek_root AND o.path = :seek_path AND o.kind = :seek_kind
 AND NOT (o.kind = {V.NUMBER} AND o.num IS NULL)"""
# ``o`` is its run's value: the first row of (run, root, path, elem 0) in (kind, num, txt, id)
# order, the row the ORDER BY lookup of :mod:`.order` reads. One probe of the covering
# (run_pk, root, path, elem, kind, num, txt) index; it also proves ``o.elem = 0``.
_FIRST_ROW = """o.id = (SELECT f.id FROM run_values AS f
 WHERE f.run_pk = o.run_pk AND f.root = :seek_root AND f.path = :seek_path AND f.elem = 0
 ORDER BY f.kind, f.num, f.txt, f.id LIMIT 1)"""


class _ValueSeek:
    """The statements of :func:`first_run_pks`'s walk along the value index for one key."""

    def __init__(self, project_pk: int, filters: Mapping[str, Any] | None, spec: KeySpec,
                 ascending: bool, include_deleted: bool) -> None:
        self.project_pk, self.filters, self.spec = project_pk, filters, spec
        self.ascending, self.include_deleted = ascending, include_deleted
        # SQLite's default null placement (first ascending, last descending) is the order's
        # (value NULLS FIRST / NULLS LAST) and lets the index supply the order.
        self.direction = "ASC" if ascending else "DESC"
        self._statements: dict[Any, Any] = {}

    def _params(self, kind: int, **more: Any) -> dict[str, Any]:
        return {"seek_root": self.spec.root, "seek_path": self.spec.paths[0],
                "seek_kind": kind, **more}

    @staticmethod
    def _value(kind: int) -> str:
        """The column holding the sort value of this kind (see ``sql.sort_value``)."""
        return "num" if kind in _NUM_KINDS else "txt"

    def boundary(self, conn: Any, kind: int, window: int) -> tuple[bool, Any]:
        """``(True, value)`` of the ``window``-th candidate row of this kind in the order
        (array elements and non-first rows too: any value bounds the scan correctly), or
        ``(False, None)`` when there are fewer rows."""
        value = self._value(kind)
        key = ("boundary", value)
        if key not in self._statements:
            self._statements[key] = text(
                f"SELECT o.{value} FROM run_values AS o WHERE {_CANDIDATE}"
                f" ORDER BY o.{value} {self.direction} LIMIT 1 OFFSET :seek_skip")
        row = conn.execute(self._statements[key],
                           self._params(kind, seek_skip=window - 1)).first()
        return (False, None) if row is None else (True, row[0])

    def head(self, conn: Any, kind: int, limit: int, bound: tuple[bool, Any]) -> list[int]:
        """The first ``limit`` matching runs whose first value row has this kind, valued up to
        ``bound``'s value (ties included) when there is one."""
        value = self._value(kind)
        bounded = bound[0]
        key = ("head", value, bounded)
        if key not in self._statements:
            cond = f"{_CANDIDATE} AND runs.pk = o.run_pk AND {_FIRST_ROW}"
            if bounded:
                cond += f" AND o.{value} {'<=' if self.ascending else '>='} :seek_bound"
            self._statements[key] = (
                select(RUNS.c.pk).select_from(text("run_values AS o"))
                .where(text(cond), *_where(self.project_pk, self.filters,
                                           self.include_deleted, correlated=True))
                .order_by(text(f"o.{value} {self.direction}"), *TIE_BREAK)
                .limit(bindparam("seek_head", type_=Integer)))
        params = self._params(kind, seek_head=limit)
        if bounded:
            params["seek_bound"] = bound[1]
        return list(conn.execute(self._statements[key], params).scalars().all())

    def segment(self, conn: Any, kind: int, limit: int) -> list[int] | None:
        """The first ``limit`` matching runs whose value has this kind, in order; None when
        that needs reading more than a bounded window of the index (few runs match)."""
        window = _FIRST_WINDOW + _WINDOW_PER_RUN * limit
        for _ in range(_WINDOW_TRIES):
            bound = self.boundary(conn, kind, window)
            # The head of the runs valued up to the window's last value (ties included) is
            # exact: every other run sorts after all of them. The window only bounds the scan.
            got = self.head(conn, kind, limit, bound)
            if len(got) >= limit or not bound[0]:
                return got
            window *= _WINDOW_GROWTH
        return None


def _first_by_value(conn: Connection | Session, project_pk: int,
                    filters: Mapping[str, Any] | None, spec: KeySpec, ascending: bool,
                    limit: int, include_deleted: bool) -> list[int] | None:
    """:func:`first_run_pks` along the value index (None: use the full statement)."""
    if limit == 0:
        return []
    kinds = {k for (k,) in conn.execute(_KINDS_SQL, {"root": spec.root,
                                                      "path": spec.paths[0]})}
    seek = _ValueSeek(project_pk, filters, spec, ascending, include_deleted)
    out: list[int] = []
    for kind in sorted(kinds & TYPE_RANK.keys(), key=TYPE_RANK.__getitem__,
                       reverse=not ascending):
        got = seek.segment(conn, kind, limit - len(out))
        if got is None:
            return None
        out.extend(got)
        if len(out) >= limit:
            return out[:limit]
    # Missing, null and NaN values: the rank lookup is NULL; ordered by the tie-break alone.
    rank = value_lookup(spec, rank_of(RUN_VALUES.c))
    rest = (select(RUNS.c.pk)
            .where(*_where(project_pk, filters, include_deleted), rank.is_(None))
            .order_by(*TIE_BREAK).limit(limit - len(out)))
    out.extend(conn.execute(rest).scalars().all())
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
        *_where(project_pk, filters, include_deleted))
    try:
        return int(session_or_conn.execute(stmt).scalar_one())
    except SQLAlchemyError as exc:
        raise translate_db_error(exc, f"counting runs of project {project_pk}") from exc
