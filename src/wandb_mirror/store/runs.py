"""Writing and reading projects, users and runs in their upstream (GraphQL) shapes.

``upsert_runs`` takes run nodes exactly as the W&B ``RunFragment`` returns them and keeps the
raw strings; ``run_node`` gives the same shape back, so a mirror served and re-synced is
identical to the original.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from . import values
from .models import Project, Run, RunValue, User

__all__ = [
    "FRAGMENT_FIELDS", "TERMINAL_STATES", "filter_columns", "get_project", "get_run",
    "get_run_by_storage_id", "mark_run_deleted", "now_iso", "run_node", "upsert_project",
    "upsert_runs", "upsert_user",
]

TERMINAL_STATES = frozenset({"finished", "failed", "crashed", "killed", "preempted"})

# GraphQL run field -> Run attribute, for the plain scalar fields of the fragment.
_SCALARS = {
    "id": "storage_id",
    "displayName": "display_name",
    "state": "state",
    "sweepName": "sweep_name",
    "group": "group",
    "jobType": "job_type",
    "commit": "commit",
    "description": "description",
    "notes": "notes",
    "host": "host",
    "readOnly": "read_only",
    "createdAt": "created_at",
    "heartbeatAt": "heartbeat_at",
    "updatedAt": "updated_at",
    "historyLineCount": "history_line_count",
    "eventsLineCount": "events_line_count",
    "projectId": "project_internal_id",
}
_JSON_STRINGS = {
    "config": "config_raw",
    "summaryMetrics": "summary_raw",
    "systemMetrics": "system_metrics_raw",
}
FRAGMENT_FIELDS = frozenset(
    set(_SCALARS) | set(_JSON_STRINGS) | {"name", "tags", "user", "historyKeys"}
)


def now_iso() -> str:
    """Current UTC time as ISO-8601 with ``Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def upsert_user(session: Session, user: Mapping[str, Any] | None) -> int | None:
    """Insert or update a user by username; returns its pk (None without a username)."""
    if not user:
        return None
    username = user.get("username") or user.get("name")
    if not username:
        return None
    row = session.scalar(select(User).where(User.username == username))
    if row is None:
        row = User(username=username)
        session.add(row)
    for key, attr in (("name", "name"), ("email", "email"), ("id", "upstream_id"),
                      ("photoUrl", "photo_url")):
        if user.get(key) is not None:
            setattr(row, attr, user[key])
    session.flush()
    return row.pk


def upsert_project(session: Session, entity: str, name: str, **fields: Any) -> Project:
    """Insert or update a project; ``fields`` are Project attributes."""
    row = get_project(session, entity, name)
    if row is None:
        row = Project(entity=entity, name=name, is_benchmark=False)
        session.add(row)
    for key, value in fields.items():
        if value is not None:
            setattr(row, key, value)
    session.flush()
    return row


def get_project(session: Session, entity: str, name: str) -> Project | None:
    return session.scalar(select(Project).where(Project.entity == entity, Project.name == name))


def get_run(session: Session, project_pk: int, run_id: str) -> Run | None:
    return session.scalar(select(Run).where(Run.project_pk == project_pk, Run.run_id == run_id))


def get_run_by_storage_id(session: Session, storage_id: str) -> Run | None:
    """A run by its GraphQL node id (``Run.id``, what mutations name runs by)."""
    return session.scalar(select(Run).where(Run.storage_id == storage_id).limit(1))


def mark_run_deleted(session: Session, run: Run, stamp: str | None = None) -> None:
    """Mark a run deleted upstream (kept, hidden from listings, as a sync marks runs gone)."""
    run.deleted_at = stamp or now_iso()
    session.flush()


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        return value.decode() if isinstance(value, bytes) else value
    return values.dumps(value)


def _duration(summary: Mapping[str, Any], created: float | None, heartbeat: float | None) -> Any:
    wb = summary.get("_wandb")
    runtime = wb.get("runtime") if isinstance(wb, Mapping) else None
    if isinstance(runtime, (int, float)) and not isinstance(runtime, bool):
        return runtime
    runtime = summary.get("_runtime")
    if isinstance(runtime, (int, float)) and not isinstance(runtime, bool):
        return runtime
    if created is not None and heartbeat is not None:
        return heartbeat - created
    return None


def _safe_loads(text: str | None) -> Any:
    try:
        return values.loads(text)
    except ValueError:
        return None


def filter_columns(run: Run, username: str | None) -> dict[str, Any]:
    """The run-column values that filters address, under their canonical names."""
    summary = _safe_loads(run.summary_raw)
    summary = summary if isinstance(summary, Mapping) else {}
    tags = _safe_loads(run.tags_raw)
    return {
        "name": run.run_id,
        "displayName": run.display_name,
        "state": run.state,
        "tags": tags if isinstance(tags, list) else [],
        "createdAt": run.created_at,
        "heartbeatAt": run.heartbeat_at,
        "updatedAt": run.updated_at,
        "group": run.group,
        "jobType": run.job_type,
        "username": username,
        "sweep": run.sweep_name,
        "notes": run.notes,
        "host": run.host,
        "duration": _duration(summary, run.created_ts, run.heartbeat_ts),
    }


def upsert_runs(
    session: Session,
    project: Project,
    nodes: Iterable[Mapping[str, Any]],
    *,
    synced_at: str | None = None,
) -> list[Run]:
    """Insert or update runs from GraphQL run nodes and rebuild their value index.

    Fields absent from a node are left as they are (a lightweight fragment does not erase
    config). A config/summary string that is not JSON is still stored raw; it just gets no
    index rows.

    Returns:
        The Run rows, in input order.
    """
    out: list[Run] = []
    synced_at = synced_at or now_iso()
    for node in nodes:
        run_id = node["name"]
        run = get_run(session, project.pk, run_id)
        if run is None:
            run = Run(project_pk=project.pk, run_id=run_id)
            session.add(run)
        for field, attr in _SCALARS.items():
            if field in node:
                value = node[field]
                if field == "projectId" and value is not None:
                    value = str(value)
                setattr(run, attr, value)
        for field, attr in _JSON_STRINGS.items():
            if field in node:
                setattr(run, attr, _json_text(node[field]))
        if "tags" in node:
            run.tags_raw = values.dumps(node["tags"]) if node["tags"] is not None else None
        if "historyKeys" in node:
            run.history_keys_raw = _json_text(node["historyKeys"])
        extra = {k: v for k, v in node.items() if k not in FRAGMENT_FIELDS}
        if extra:
            run.extra_raw = values.dumps(extra)
        username = None
        if "user" in node:
            run.user_pk = upsert_user(session, node["user"])
            if node["user"]:
                username = node["user"].get("username") or node["user"].get("name")
        elif run.user_pk is not None:
            user = session.get(User, run.user_pk)
            username = user.username if user else None
        run.created_ts = values.parse_timestamp(run.created_at)
        run.heartbeat_ts = values.parse_timestamp(run.heartbeat_at)
        run.updated_ts = values.parse_timestamp(run.updated_at)
        run.deleted_at = None
        run.synced_at = synced_at
        session.flush()
        _reindex(session, run, username)
        out.append(run)
    return out


def _reindex(session: Session, run: Run, username: str | None) -> None:
    config = _safe_loads(run.config_raw)
    summary = _safe_loads(run.summary_raw)
    session.execute(delete(RunValue).where(RunValue.run_pk == run.pk))
    rows = values.run_value_rows(
        run.pk,
        config if isinstance(config, Mapping) else None,
        summary if isinstance(summary, Mapping) else None,
        filter_columns(run, username),
    )
    if rows:
        session.execute(insert(RunValue), rows)


def run_node(run: Run, user: User | None, *, full: bool = True) -> dict[str, Any]:
    """The run as a GraphQL ``RunFragment`` node (``full=False``: the lightweight fragment)."""
    node: dict[str, Any] = {"name": run.run_id, "projectId": run.project_internal_id}
    for field, attr in _SCALARS.items():
        node[field] = getattr(run, attr)
    node["tags"] = values.loads(run.tags_raw) if run.tags_raw is not None else []
    node["user"] = (
        {"name": user.name, "username": user.username, "email": user.email, "id": user.upstream_id}
        if user is not None else None
    )
    if full:
        for field, attr in _JSON_STRINGS.items():
            node[field] = getattr(run, attr)
        node["historyKeys"] = _safe_loads(run.history_keys_raw)
    if run.extra_raw:
        extra = _safe_loads(run.extra_raw)
        if isinstance(extra, Mapping):
            for key, value in extra.items():
                node.setdefault(key, value)
    return node


