"""Select and count a project's runs with a W&B filter and order."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Select, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..errors import FilterError
from ..store.engine import translate_db_error
from ..store.models import Run
from .filters import compile_run_filter
from .order import compile_order
from .sql import RUNS

__all__ = ["MAX_PAGING", "count_runs", "runs_statement", "select_runs"]

MAX_PAGING = 2**62
"""Largest accepted ``limit``/``offset`` (SQLite binds int64)."""


def _where(project_pk: int, filters: Mapping[str, Any] | None, include_deleted: bool) -> list[Any]:
    where = [RUNS.c.project_pk == project_pk, compile_run_filter(filters)]
    if not include_deleted:
        where.append(RUNS.c.deleted_at.is_(None))
    return where


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
    for name, value in (("limit", limit), ("offset", offset)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= MAX_PAGING):
            raise FilterError(f"{name} must be a non-negative integer, not {value!r}",
                              f"${name}")
    stmt = (select(Run).where(*_where(project_pk, filters, include_deleted))
            .order_by(*compile_order(order)))
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    return stmt


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
