"""Helpers shared by the query tests: build run nodes from plain documents, seed a store."""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from wandb_mirror.query.runs import run_pks_statement, where_text
from wandb_mirror.store.rows import fetch_text

from wandb_mirror.store import open_store
from wandb_mirror.store import values as V
from wandb_mirror.store.models import Project
from wandb_mirror.store.runs import upsert_project, upsert_runs


def spell(dt: datetime, style: int) -> str:
    """An ISO-8601 spelling of the UTC instant ``dt`` (naive, UTC) in one of several styles."""
    assert dt.tzinfo is None
    frac = ""
    if dt.microsecond or style % 3 == 1:
        frac = f".{dt.microsecond:06d}" if dt.microsecond % 1000 or style % 2 else \
            f".{dt.microsecond // 1000:03d}"
    style %= 5
    if style == 0:
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + frac
    if style == 1:
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"
    if style == 2:
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + frac + "+00:00"
    offset = timedelta(hours=2) if style == 3 else -timedelta(hours=5, minutes=30)
    local = dt + offset
    sign = "+" if offset >= timedelta(0) else "-"
    mins = abs(int(offset.total_seconds())) // 60
    return local.strftime("%Y-%m-%dT%H:%M:%S") + frac + f"{sign}{mins // 60:02d}:{mins % 60:02d}"


def utc(text_: str) -> datetime:
    """Naive UTC datetime of an ISO string (how the Mongo-side documents hold timestamps)."""
    ts = V.parse_timestamp(text_)
    assert ts is not None, text_
    return datetime.fromtimestamp(ts, tz=timezone.utc).replace(tzinfo=None)


def node(run_id: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    """A GraphQL run node from a plain document with keys config (unwrapped), summary, and
    run fields under their GraphQL names (state, tags, createdAt, ...)."""
    out: dict[str, Any] = {"name": run_id}
    config = doc.get("config")
    if config is not None:
        out["config"] = V.dumps({k: {"value": v} for k, v in config.items()})
    if doc.get("summary") is not None:
        out["summaryMetrics"] = V.dumps(doc["summary"])
    for key in ("displayName", "state", "tags", "createdAt", "heartbeatAt", "updatedAt",
                "group", "jobType", "notes", "host", "sweepName"):
        if key in doc:
            out[key] = doc[key]
    if doc.get("username"):
        out["user"] = {"username": doc["username"], "name": doc["username"]}
    return out


def new_store(path: str = "sqlite://") -> Engine:
    """A migrated store (in memory by default)."""
    return open_store(path)


def seed(session: Session, docs: Iterable[Mapping[str, Any]], *, project: str = "p",
         entity: str = "e", ids: Iterable[str] | None = None) -> Project:
    """Upsert runs ``r0, r1, ...`` (or ``ids``) built from ``docs`` into a project."""
    proj = upsert_project(session, entity, project)
    docs = list(docs)
    names = list(ids) if ids is not None else [f"r{i}" for i in range(len(docs))]
    upsert_runs(session, proj, [node(n, d) for n, d in zip(names, docs)])
    session.flush()
    return proj


def text_sql_agrees(session: Session | Connection, project_pk: int,
                    filters: Mapping[str, Any] | None) -> list[int]:
    """The project's runs matching ``filters`` by SQLAlchemy's statement
    (``run_pks_statement``), checked equal to the SQLite-text spelling of the same compiler
    (``where_text``, both probe spellings, with and without deleted runs); sorted pks."""
    out = []
    for include_deleted in (False, True):
        want = sorted(session.execute(run_pks_statement(
            project_pk, filters, include_deleted=include_deleted)).scalars())
        for correlated in (False, True):
            where = where_text(project_pk, filters, include_deleted, correlated=correlated)
            got = sorted(pk for (pk,) in fetch_text(
                session, f"SELECT runs.pk FROM runs WHERE {where.sql}", where.params))
            assert got == want, (filters, include_deleted, correlated, where)
        out.append(want)
    return out[0]


def store_fingerprint(engine: Engine) -> str:
    """A digest of every table's content, to prove an operation left the store untouched."""
    parts = []
    with engine.connect() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"))]
        for t in tables:
            rows = conn.execute(text(f'SELECT * FROM "{t}"')).fetchall()
            parts.append(f"{t}:{sorted(map(repr, rows))}")
    return json.dumps(parts)


__all__ = ["new_store", "node", "seed", "spell", "store_fingerprint", "text_sql_agrees", "utc"]
