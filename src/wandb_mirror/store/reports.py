"""Reports (GraphQL ``View`` nodes of ``project.allViews``).

``upsert_reports`` takes nodes as ``ProjectViews`` returns them
(``{id name displayName description user{username photoUrl email} spec updatedAt createdAt}``,
``spec`` being a JSON string) and ``report_node`` gives that shape back.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Project, Report, User
from .runs import upsert_user
from .values import dumps

__all__ = ["get_report", "list_reports", "report_node", "upsert_reports"]

_FIELDS = {
    "name": "name",
    "displayName": "display_name",
    "description": "description",
    "spec": "spec_raw",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
}


def upsert_reports(session: Session, project: Project, nodes: Iterable[Mapping[str, Any]]) -> list[Report]:
    """Insert or update reports (keyed by upstream ``id``); absent fields are left as they are."""
    out: list[Report] = []
    for node in nodes:
        row = get_report(session, project.pk, node["id"])
        if row is None:
            row = Report(project_pk=project.pk, upstream_id=node["id"])
            session.add(row)
        for field, attr in _FIELDS.items():
            if field in node:
                value = node[field]
                if field == "spec" and value is not None and not isinstance(value, str):
                    value = dumps(value)
                setattr(row, attr, value)
        if "user" in node:
            row.user_pk = upsert_user(session, node["user"])
        row.deleted_at = None
        out.append(row)
    session.flush()
    return out


def get_report(session: Session, project_pk: int, upstream_id: str) -> Report | None:
    """One report by its upstream id."""
    return session.scalar(select(Report).where(Report.project_pk == project_pk,
                                               Report.upstream_id == upstream_id))


def list_reports(session: Session, project_pk: int, *, name: str | None = None,
                 limit: int | None = None, offset: int = 0) -> list[Report]:
    """A project's reports (optionally only those whose ``name`` is ``name``), oldest first."""
    stmt = select(Report).where(Report.project_pk == project_pk, Report.deleted_at.is_(None))
    if name is not None:
        stmt = stmt.where(Report.name == name)
    stmt = stmt.order_by(Report.created_at, Report.pk).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def report_node(row: Report, user: User | None) -> dict[str, Any]:
    """The report as a GraphQL ``View`` node."""
    node: dict[str, Any] = {"id": row.upstream_id}
    for field, attr in _FIELDS.items():
        node[field] = getattr(row, attr)
    node["user"] = (
        {"username": user.username, "photoUrl": user.photo_url, "email": user.email}
        if user is not None else None
    )
    return node
