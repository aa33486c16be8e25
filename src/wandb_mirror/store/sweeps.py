"""Sweeps in their GraphQL ``SweepFragment`` shape.

``upsert_sweeps`` takes nodes as ``GetSweep``/``GetSweeps`` return them
(``{__typename id name displayName method state description bestLoss config createdAt updatedAt
runCount runCountExpected}``, ``config`` being the YAML string) and ``sweep_node`` gives that
shape back.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from .models import Project, Sweep

__all__ = ["count_sweeps", "get_sweep", "list_sweeps", "sweep_node", "upsert_sweeps"]

_FIELDS = {
    "id": "upstream_id",
    "displayName": "display_name",
    "method": "method",
    "state": "state",
    "description": "description",
    "bestLoss": "best_loss",
    "config": "config_raw",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "runCount": "run_count",
    "runCountExpected": "run_count_expected",
}


def upsert_sweeps(session: Session, project: Project, nodes: Iterable[Mapping[str, Any]]) -> list[Sweep]:
    """Insert or update sweeps (keyed by ``name``); absent fields are left as they are."""
    out: list[Sweep] = []
    for node in nodes:
        row = get_sweep(session, project.pk, node["name"])
        if row is None:
            row = Sweep(project_pk=project.pk, name=node["name"])
            session.add(row)
        for field, attr in _FIELDS.items():
            if field in node:
                setattr(row, attr, node[field])
        row.deleted_at = None
        out.append(row)
    session.flush()
    return out


def get_sweep(session: Session, project_pk: int, name: str) -> Sweep | None:
    """One sweep by its short name (the id used in paths)."""
    return session.scalar(select(Sweep).where(Sweep.project_pk == project_pk, Sweep.name == name))


def list_sweeps(session: Session, project_pk: int, *, where: ColumnElement[bool] | None = None,
                limit: int | None = None, offset: int = 0) -> list[Sweep]:
    """A project's sweeps, oldest first (then by name), deleted ones excluded.

    ``where``: an extra condition on ``Sweep`` (e.g. a compiled filter from ``query``).
    """
    stmt = select(Sweep).where(Sweep.project_pk == project_pk, Sweep.deleted_at.is_(None))
    if where is not None:
        stmt = stmt.where(where)
    stmt = stmt.order_by(Sweep.created_at, Sweep.name).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def count_sweeps(session: Session, project_pk: int, *,
                 where: ColumnElement[bool] | None = None) -> int:
    """Number of a project's (not deleted) sweeps, optionally matching ``where``."""
    stmt = select(func.count()).select_from(Sweep).where(
        Sweep.project_pk == project_pk, Sweep.deleted_at.is_(None))
    if where is not None:
        stmt = stmt.where(where)
    return int(session.scalar(stmt) or 0)


def sweep_node(row: Sweep) -> dict[str, Any]:
    """The sweep as a GraphQL ``SweepFragment`` node."""
    node: dict[str, Any] = {"__typename": "Sweep", "name": row.name}
    for field, attr in _FIELDS.items():
        node[field] = getattr(row, attr)
    return node
