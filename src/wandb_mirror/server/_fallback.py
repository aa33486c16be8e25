"""Minimal stand-in for ``wandb_mirror.query`` (used only while that package lacks
``select_runs``/``count_runs``): equality filters on run columns, ``$and``, and ordering by
``created_at`` or a top-level summary metric, evaluated in Python."""
from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import FilterError
from ..store.models import Run
from ..store.values import loads

_COLS = {"name": "run_id", "state": "state", "sweep": "sweep_name", "displayName": "display_name",
         "display_name": "display_name", "group": "group", "jobType": "job_type"}


def _match(run: Run, filters: Any) -> bool:
    for key, value in (filters or {}).items():
        if key == "$and":
            if not all(_match(run, f) for f in value):
                return False
        elif key in _COLS:
            if getattr(run, _COLS[key]) != value:
                return False
        else:
            raise FilterError(f"the fallback filter cannot evaluate {key!r}", f"$.{key}")
    return True


def _key(run: Run, field: str) -> Any:
    if field in ("created_at", "createdAt"):
        return (0, run.created_ts or 0.0)
    if field.startswith("summary_metrics."):
        value = (loads(run.summary_raw) or {}).get(field.split(".", 1)[1])
        if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
            return (0, value)
        return (1, 0)
    raise FilterError(f"the fallback cannot order by {field!r}", "$order")


def select_runs(session: Session, project_pk: int, filters: Any = None, order: str | None = None,
                *, include_deleted: bool = False, limit: int | None = None,
                offset: int | None = None) -> list[Run]:
    runs = [r for r in session.scalars(select(Run).where(Run.project_pk == project_pk)
                                       .order_by(Run.created_ts, Run.pk))
            if (include_deleted or r.deleted_at is None) and _match(r, filters)]
    order = order or "+created_at"
    desc = order.startswith("-") or order[0] not in "+-"
    field = order.lstrip("+-")
    runs.sort(key=lambda r: _key(r, field), reverse=desc)
    if desc:
        runs.sort(key=lambda r: _key(r, field)[0])  # missing values last either way
    start = offset or 0
    return runs[start:start + limit] if limit is not None else runs[start:]


def count_runs(session: Session, project_pk: int, filters: Any = None, **_: Any) -> int:
    return len(select_runs(session, project_pk, filters))
