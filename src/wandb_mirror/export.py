"""Tables out of the store for the command line: runs tables and histories, to pandas, parquet
or csv (for pandas, polars and duckdb users)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from .errors import ConfigError, NotMirroredError
from .query import select_runs
from .store import history as H
from .store import values
from .store.engine import session_scope
from .store.models import Run, User
from .store.runs import get_project, get_run

__all__ = ["EXPORT_FORMATS", "export_project", "history_frame", "runs_frame", "split_path"]

EXPORT_FORMATS = ("parquet", "csv")
_BASE_COLUMNS = ["id", "name", "state", "created_at", "heartbeat_at", "user", "group",
                 "job_type", "tags", "sweep"]


def split_path(path: str, parts: int) -> list[str]:
    """``entity/project`` (parts=2) or ``entity/project/run`` (parts=3, ``/runs/`` allowed)."""
    bits = [b for b in path.strip("/").split("/") if b and b != "runs"]
    if len(bits) != parts:
        shape = "ENTITY/PROJECT" if parts == 2 else "ENTITY/PROJECT/RUN_ID"
        raise ConfigError(f"expected a path like {shape}, got {path!r}")
    return bits


def _project(s: Any, entity: str, name: str) -> Any:
    project = get_project(s, entity, name)
    if project is None:
        raise NotMirroredError(f"project {entity}/{name} is not in this store; run "
                               f"`wandb-mirror sync {entity}/{name}` first")
    return project


def _flat(prefix: str, obj: Any, out: dict[str, Any]) -> None:
    if isinstance(obj, Mapping) and not obj.get("_type"):
        for k, v in obj.items():
            _flat(f"{prefix}.{k}", v, out)
    else:
        out[prefix] = obj if not isinstance(obj, (list, Mapping)) else values.dumps(obj)


def runs_frame(engine: Engine, path: str, *, filters: Mapping[str, Any] | None = None,
               order: str | Sequence[str] | None = None, keys: Sequence[str] | None = None,
               limit: int | None = None, flatten: bool = True) -> pd.DataFrame:
    """The runs table of a project: base columns, then ``config.*`` and ``summary_metrics.*``
    (all of them, or only ``keys``), one row per run in ``order``."""
    entity, name = split_path(path, 2)
    records = []
    with session_scope(engine, f"reading runs of {path}") as s:
        project = _project(s, entity, name)
        for run in select_runs(s, project.pk, filters, order, limit=limit):
            user = s.get(User, run.user_pk) if run.user_pk else None
            rec: dict[str, Any] = {
                "id": run.run_id, "name": run.display_name, "state": run.state,
                "created_at": run.created_at, "heartbeat_at": run.heartbeat_at,
                "user": user.username if user else None, "group": run.group,
                "job_type": run.job_type, "tags": ",".join(values.loads(run.tags_raw) or [])
                if run.tags_raw else "", "sweep": run.sweep_name}
            if flatten:
                cfg = values.unwrap_config(_obj(run.config_raw))
                cfg = {k: v for k, v in cfg.items() if k not in ("_wandb", "wandb_version")}
                _flat("config", cfg, rec) if cfg else None
                summary = _obj(run.summary_raw)
                _flat("summary_metrics", summary, rec) if summary else None
            records.append(rec)
    frame = pd.DataFrame.from_records(records)
    if keys:
        missing = [k for k in keys if k not in frame.columns]
        for k in missing:
            frame[k] = None
        frame = frame[[c for c in _BASE_COLUMNS if c in frame.columns] + list(keys)]
    return frame


def _obj(text: str | None) -> dict[str, Any]:
    try:
        parsed = values.loads(text)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def history_frame(engine: Engine, run_path: str, *, keys: Sequence[str] | None = None,
                  samples: int | None = None, stream: str = "default") -> pd.DataFrame:
    """One run's history (all rows, or ``samples`` evenly spaced ones keeping first and last;
    with ``keys``, the rows holding all of them)."""
    entity, name, run_id = split_path(run_path, 3)
    with session_scope(engine, f"reading history of {run_path}") as s:
        project = _project(s, entity, name)
        run = get_run(s, project.pk, run_id)
        if run is None:
            raise NotMirroredError(f"run {run_path} is not in this store; run "
                                   f"`wandb-mirror sync {entity}/{name}` first")
        return H.to_pandas(s, run.pk, keys=keys, samples=samples, stream=stream)


def export_project(engine: Engine, path: str, dest: str | Path, *, fmt: str = "parquet",
                   filters: Mapping[str, Any] | None = None,
                   keys: Sequence[str] | None = None) -> list[Path]:
    """Write ``runs.<fmt>`` (the runs table) and ``history.<fmt>`` (every matching run's
    history, one ``run_id`` column, ``keys`` or all keys) into the directory ``dest``."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    out_dir = Path(dest)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = runs_frame(engine, path, filters=filters)
    entity, name = split_path(path, 2)
    with session_scope(engine, f"reading histories of {path}") as s:
        project = _project(s, entity, name)
        pk_by_id = dict(s.execute(select(Run.run_id, Run.pk).where(
            Run.project_pk == project.pk)).all())
        pks = [pk_by_id[r] for r in runs["id"]] if len(runs) else []
        if keys:
            hist = H.read_many_pandas(s, pks, keys=list(keys), union=True, run_column="run_pk")
        else:
            frames = []
            for rid, pk in zip(runs["id"] if len(runs) else [], pks):
                f = H.to_pandas(s, pk)
                f.insert(0, "run_pk", pk)
                frames.append(f)
            hist = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if "run_pk" in hist.columns:
        id_by_pk = {v: k for k, v in pk_by_id.items()}
        hist.insert(0, "run_id", hist.pop("run_pk").map(id_by_pk))
    written = []
    for label, frame in (("runs", runs), ("history", hist)):
        target = out_dir / f"{label}.{fmt}"
        frame = frame.copy()
        for col in frame.columns:
            if frame[col].dtype == object:
                frame[col] = frame[col].map(lambda v: v if v is None or isinstance(v, str)
                                            else values.dumps(v))
        if fmt == "parquet":
            frame.to_parquet(target, index=False)
        else:
            frame.to_csv(target, index=False)
        written.append(target)
    return written
