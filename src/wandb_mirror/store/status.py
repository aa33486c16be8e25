"""What the store holds per project and how fresh it is (``wandb-mirror status``)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Engine, func, select

from . import values
from .engine import read_scope, session_scope
from .models import HistoryChunk, Project, ProjectSync, Run, Sweep
from .rows import fetch_named

__all__ = ["ProjectStatus", "project_status", "project_sync_state"]

# Fixed SQL text on the DBAPI cursor, not an ORM query: this lookup precedes a process's first
# listing, which then neither configures the ORM mappers nor pays SQLAlchemy's first
# compilation (or an ORM Session's set-up) for it.
_SYNC_STATE = (
    f"SELECT p.pk, s.last_sync_at FROM {Project.__tablename__} AS p"
    f" LEFT OUTER JOIN {ProjectSync.__tablename__} AS s ON s.project_pk = p.pk"
    " WHERE p.entity = :entity AND p.name = :name")


def project_sync_state(engine: Engine, entity: str, name: str) -> tuple[int | None, str | None]:
    """``(project pk, last_sync_at)`` of ``entity/name``; ``(None, None)`` when the store does
    not hold the project (``last_sync_at`` is None when it was never synced).

    Raises:
        StoreError: the database failed.
    """
    with read_scope(engine, f"looking up project {entity}/{name}") as conn:
        rows = fetch_named(conn, _SYNC_STATE, {"entity": entity, "name": name})
    return (rows[0][0], rows[0][1]) if rows else (None, None)


@dataclass(frozen=True)
class ProjectStatus:
    """One project's counts and sync state."""

    path: str
    runs: int
    deleted_runs: int
    history_rows: int
    sweeps: int
    last_sync_at: str | None
    last_full_sync_at: str | None
    age_seconds: float | None
    last_error: str | None


def project_status(engine: Engine, *, now: datetime | None = None) -> list[ProjectStatus]:
    """Status of every project in the store, by path."""
    now_ts = (now or datetime.now(timezone.utc)).timestamp()
    out: list[ProjectStatus] = []
    with session_scope(engine, "reading the store's status") as s:
        for p in s.scalars(select(Project).order_by(Project.entity, Project.name)):
            live = s.scalar(select(func.count()).where(Run.project_pk == p.pk,
                                                       Run.deleted_at.is_(None))) or 0
            gone = s.scalar(select(func.count()).where(Run.project_pk == p.pk,
                                                       Run.deleted_at.is_not(None))) or 0
            rows = s.scalar(select(func.coalesce(func.sum(HistoryChunk.n_rows), 0))
                            .join(Run, Run.pk == HistoryChunk.run_pk)
                            .where(Run.project_pk == p.pk, HistoryChunk.stream == "default")) or 0
            sweeps = s.scalar(select(func.count()).where(Sweep.project_pk == p.pk)) or 0
            state = s.get(ProjectSync, p.pk)
            last = state.last_sync_at if state else None
            ts = values.parse_timestamp(last) if last else None
            out.append(ProjectStatus(
                path=f"{p.entity}/{p.name}", runs=live, deleted_runs=gone, history_rows=int(rows),
                sweeps=sweeps, last_sync_at=last,
                last_full_sync_at=state.last_full_sync_at if state else None,
                age_seconds=None if ts is None else max(0.0, now_ts - ts),
                last_error=state.last_error if state else None))
    return out
