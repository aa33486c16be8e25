"""``Runs`` and ``Run``: a project's runs answered from the store, attributes as ``wandb.Api``'s.

A ``Run`` holds the run exactly as the GraphQL ``RunFragment`` returns it (``_attrs``), then
unwraps it as the upstream client does (``runs.py`` ``_load_from_attrs``): ``config`` without
``_wandb``/``wandb_version``, ``rawconfig`` with them, ``summaryMetrics``/``systemMetrics``
parsed. Unknown snake_case attributes read the camelCase fields (``run.history_line_count``).
"""
from __future__ import annotations

import json
import os
import tempfile
import urllib.parse
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from ..query import first_run_pks, parse_order, parse_run_filter, run_pks_statement
from ..store import history as H
from ..store import runs as store_runs
from ..store import values
from ..store.engine import read_scope, session_scope
from ..store.rows import run_rows, user_rows
from ..store.models import Run as RunRow
from ..store.models import User as UserRow
from .base import Attrs, Paginator
from .history import HistoryScan, check_keys, frame_from_rows, sampled_rows
from .users import User

if TYPE_CHECKING:
    import polars as pl

    from .api import Api
    from .artifacts import Artifact, RunArtifacts
    from .files import File, Files
    from .sweeps import Sweep

__all__ = ["Run", "RunListCache", "Runs", "Summary", "WANDB_INTERNAL_KEYS"]

WANDB_INTERNAL_KEYS = frozenset({"_wandb", "wandb_version"})


def _to_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    parsed = values.loads(value)
    return parsed if isinstance(parsed, dict) else {}


def load_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """Unwrap a run node in place as the upstream client does; returns it."""
    had_config = "config" in attrs
    if had_config:
        attrs["config"] = _to_dict(attrs.get("config"))
    for key in ("summaryMetrics", "systemMetrics"):
        if key in attrs:
            attrs[key] = _to_dict(attrs.get(key))
    user_cfg: dict[str, Any] = {}
    raw_cfg: dict[str, Any] = {}
    for key, value in (attrs.get("config") or {}).items():
        target = raw_cfg if key in WANDB_INTERNAL_KEYS else user_cfg
        target[key] = value["value"] if isinstance(value, dict) and "value" in value else value
    if had_config:
        raw_cfg.update(user_cfg)
        attrs["config"] = user_cfg
        attrs["rawconfig"] = raw_cfg
    return attrs


class Summary(MutableMapping[str, Any]):
    """A run's summary as a mutable mapping; :meth:`update` writes it back (online only)."""

    def __init__(self, run: Run, summary: Mapping[str, Any]) -> None:
        self._run = run
        self._json_dict = dict(summary)

    def __getitem__(self, key: str) -> Any:
        return self._json_dict[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._json_dict[key] = value

    def __delitem__(self, key: str) -> None:
        del self._json_dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._json_dict)

    def __len__(self) -> int:
        return len(self._json_dict)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self._json_dict[key]
        except KeyError:
            raise AttributeError(key) from None

    def update(self, key_vals: Mapping[str, Any] | None = None, **kwargs: Any) -> None:  # type: ignore[override]
        """Set keys and write the whole summary to the server (``upsertBucket``).

        Raises:
            OfflineError: the Api is offline.
            WriteUnsupportedError: the server has no such mutation.
        """
        self._json_dict.update(key_vals or {}, **kwargs)
        self._run._write_summary(self._json_dict)

    def __repr__(self) -> str:
        return repr(self._json_dict)


class Run(Attrs):
    """A single run of a project, answered from the store.

    Attributes:
        id: the run id used in paths (GraphQL ``name``).
        name: the display name.
        storage_id: the GraphQL node id.
        entity, project: where it lives.
        state: ``running``, ``finished``, ``failed``, ``crashed``, ``killed`` ...
        config, rawconfig, summary, summary_metrics, system_metrics: as upstream unwraps them.
        tags, group, job_type, notes, created_at, heartbeat_at, history_keys, read_only,
        sweep_name, history_line_count ...: the GraphQL fields, raw (timestamps unparsed).
        user: the :class:`~wandb_mirror.api.users.User` who created it (None if unknown).
    """

    def __init__(self, api: Api, entity: str, project: str, row: RunRow,
                 user: UserRow | None, project_pk: int) -> None:
        # The lightweight fields now; config/summary/system metrics/history keys are parsed on
        # first use (as upstream's lazy runs fetch them on first use).
        super().__init__(store_runs.run_node(row, user, full=False))
        self._heavy: dict[str, Any] | None = {
            "config": row.config_raw, "summaryMetrics": row.summary_raw,
            "systemMetrics": row.system_metrics_raw, "historyKeys": row.history_keys_raw}
        self._api = api
        self._entity = entity
        self.project = project
        self._pk = row.pk
        self._project_pk = project_pk
        self._state = self._attrs.get("state") or "not found"
        self._summary: Summary | None = None
        self._sweep: Sweep | None = None
        user_attrs = self._attrs.get("user")
        self.user: User | None = User(user_attrs) if user_attrs else None
        pid = self._attrs.get("projectId")
        self._project_internal_id = int(pid) if pid not in (None, "") and str(pid).isdigit() \
            else None

    def _full(self) -> dict[str, Any]:
        """Parse the heavy fields into ``_attrs`` (once)."""
        heavy = self.__dict__.get("_heavy")
        if heavy is not None:
            self._heavy = None
            hk = heavy.pop("historyKeys")
            self._attrs.update(heavy)
            load_attrs(self._attrs)
            try:
                self._attrs["historyKeys"] = values.loads(hk) if hk is not None else None
            except ValueError:
                self._attrs["historyKeys"] = None
        return self._attrs

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_") and self.__dict__.get("_heavy") is not None:
            self._full()
        return super().__getattr__(name)

    # ------------------------------------------------------------------ identity

    @property
    def state(self) -> str:
        """The run state (``"not found"`` when the store has none)."""
        return self._state

    @property
    def entity(self) -> str:
        return self._entity

    @property
    def storage_id(self) -> str:
        """The GraphQL node id (used by mutations)."""
        return self._attrs["id"]

    @property
    def id(self) -> str:
        """The run id used in paths."""
        return self._attrs["name"]

    @id.setter
    def id(self, new_id: str) -> None:
        self._attrs["name"] = new_id

    @property
    def name(self) -> str | None:
        """The display name."""
        return self._attrs.get("displayName")

    @name.setter
    def name(self, new_name: str) -> None:
        self._attrs["displayName"] = new_name

    @property
    def path(self) -> list[str]:
        """``[entity, project, run_id]``, URL-quoted."""
        return [urllib.parse.quote(str(p), safe="") for p in (self.entity, self.project, self.id)]

    @property
    def url(self) -> str:
        """``<app url>/<entity>/<project>/runs/<id>``."""
        path = self.path
        path.insert(2, "runs")
        return self._api._app_url + "/" + "/".join(path)

    @property
    def dir(self) -> str:
        """Local directory for this run's downloads (``$TMPDIR/<entity>/<project>/<id>``)."""
        return os.path.join(tempfile.gettempdir(), *self.path)

    # ------------------------------------------------------------------ data

    @property
    def config(self) -> dict[str, Any]:
        """Hyperparameters, unwrapped, without ``_wandb``/``wandb_version``."""
        return self._full().get("config", {})

    @property
    def rawconfig(self) -> dict[str, Any]:
        """Unwrapped config including the internal keys."""
        return self._full().get("rawconfig", {})

    @property
    def summary_metrics(self) -> dict[str, Any]:
        """The summary as a plain dict."""
        return self._full().get("summaryMetrics", {})

    @property
    def summary(self) -> Summary:
        """The summary as a mutable mapping (``update()`` writes back when online)."""
        if self._summary is None:
            self._summary = Summary(self, self.summary_metrics)
        return self._summary

    @property
    def system_metrics(self) -> dict[str, Any]:
        """The latest system metrics."""
        return self._full().get("systemMetrics", {})

    @property
    def sweep_name(self) -> str | None:
        return self._attrs.get("sweepName")

    @property
    def sweep(self) -> Sweep | None:
        """The run's sweep (None when it is not part of one or the sweep is not mirrored)."""
        if self._sweep is None and self.sweep_name:
            from .sweeps import load_sweep

            self._sweep = load_sweep(self._api, self.entity, self.project, self.sweep_name)
        return self._sweep

    @property
    def lastHistoryStep(self) -> int:  # noqa: N802 - upstream's name
        """The last logged ``_step`` (``historyKeys.lastStep``), -1 without history."""
        hk = self._full().get("historyKeys")
        if isinstance(hk, dict):
            return int(hk.get("lastStep", -1))
        return -1

    @property
    def json_config(self) -> str:
        """The config as the JSON string ``update()`` sends."""
        config: dict[str, Any] = {}
        if "_wandb" in self.rawconfig:
            config["_wandb"] = {"value": self.rawconfig["_wandb"], "desc": None}
        for k, v in self.config.items():
            config[k] = {"value": v, "desc": None}
        return json.dumps(config)

    @property
    def metadata(self) -> dict[str, Any] | None:
        """``wandb-metadata.json`` parsed, when its bytes are available."""
        try:
            data = self.file("wandb-metadata.json").read_bytes()
        except Exception:  # noqa: BLE001 - upstream also returns None on any failure
            return None
        try:
            return values.loads(data)
        except ValueError:
            return None

    def load(self, force: bool = False) -> dict[str, Any]:
        """Re-read the run from the store (refreshing the project first if it is stale)."""
        if force:
            fresh = self._api.run("/".join([self.entity, self.project, self.id]))
            self._attrs, self._state, self.user = fresh._attrs, fresh._state, fresh.user
            self._heavy = fresh._heavy
            self._summary = None
        return self._full()

    # ------------------------------------------------------------------ history

    def history(self, samples: int | None = 500, keys: list[str] | None = None,
                x_axis: str = "_step", pandas: bool = True,
                stream: Literal["default", "system"] = "default", *,
                union: bool = False) -> pd.DataFrame | list[dict[str, Any]]:
        """Sampled history: at most ``samples`` rows, evenly spaced, first and last kept.

        Args:
            samples: rows to return at most (None: all rows).
            keys: only rows holding all of ``[x_axis] + keys``, each with just those keys.
            x_axis: the x key (default ``_step``).
            pandas: a DataFrame (``DataFrame.from_records`` of the rows) instead of dicts.
            stream: ``"default"`` metrics or ``"system"`` metrics (no ``keys``).
            union: (ours) rows holding ANY of ``keys`` instead of all of them.
        """
        keys = check_keys(keys, strict=True)
        if keys and stream != "default":
            raise ValueError("stream must be default when specifying keys")
        rows = sampled_rows(self, samples=samples, keys=keys, x_axis=x_axis, stream=stream,
                            union=union)
        return frame_from_rows(rows) if pandas else rows

    def history_frame(self, keys: Sequence[str] | None = None, *, union: bool = False,
                      min_step: int | None = None, max_step: int | None = None,
                      stream: Literal["default", "system"] = "default",
                      format: Literal["pandas", "polars", "arrow"] = "pandas") -> Any:
        """(ours) The whole history (or ``[min_step, max_step)``) as one frame, fast.

        Columns: ``_step`` then the keys; ints with gaps become float64, missing values NaN,
        dicts/lists object columns. With ``keys``: rows holding all (``union``: any) of them.
        """
        self._api._project_pk(self.entity, self.project)
        with session_scope(self._api._engine, f"reading history of {'/'.join(self.path)}") as s:
            if format == "arrow":
                return H.to_arrow(s, self._pk, keys=keys, stream=stream, min_step=min_step,
                                  max_step=max_step, union=union)
            frame = H.to_pandas(s, self._pk, keys=keys, stream=stream, min_step=min_step,
                                max_step=max_step, union=union)
        if format == "polars":
            return _polars().from_pandas(frame)
        return frame

    def scan_history(self, keys: list[str] | None = None, page_size: int = 1000,
                     min_step: int = 0, max_step: int | None = None, use_cache: bool = True,
                     *, union: bool = False) -> HistoryScan:
        """Every history row in ``[min_step, max_step)`` in step order (exact, not sampled).

        ``max_step`` defaults to and is clamped to ``lastHistoryStep + 1``; with ``keys`` only
        rows holding all of them (``union``: any). ``use_cache`` is accepted and ignored.

        Raises:
            ValueError: ``keys`` is not a list of strings.
        """
        keys = check_keys(keys, strict=True)
        self._api._project_pk(self.entity, self.project)
        last = self.lastHistoryStep
        if last < 0:
            with session_scope(self._api._engine) as s:
                stored = H.last_step(s, self._pk)
            last = -1 if stored is None else stored
        if max_step is None or max_step > last:
            max_step = last + 1
        return HistoryScan(self, min_step=min_step or 0, max_step=max_step, keys=keys,
                           page_size=page_size, union=union)

    # ------------------------------------------------------------------ files, artifacts

    def files(self, names: list[str] | None = None, pattern: str | None = None,
              per_page: int = 50) -> Files:
        """The run's files (``names`` exact, or ``pattern`` as SQL LIKE), by name."""
        from .files import Files

        if names and pattern:
            raise ValueError("names and pattern cannot both be given")
        return Files(self, names or [], pattern=pattern, per_page=per_page)

    def file(self, name: str) -> File:
        """One file by name.

        Raises:
            ValueError: no such file in the store.
        """
        found = self.files([name])[:1]
        if not found:
            raise ValueError(f"file {name!r} of run {'/'.join(self.path)} is not in the store")
        return found[0]

    def logged_artifacts(self, per_page: int = 100) -> RunArtifacts:
        """Artifact versions this run logged."""
        from .artifacts import RunArtifacts

        return RunArtifacts(self, "logged", per_page=per_page)

    def used_artifacts(self, per_page: int = 100) -> RunArtifacts:
        """Artifact versions this run used."""
        from .artifacts import RunArtifacts

        return RunArtifacts(self, "used", per_page=per_page)

    # ------------------------------------------------------------------ writes

    def update(self) -> None:
        """Write tags, notes, description, display name, group, job type, config and summary.

        Raises:
            OfflineError: the Api is offline.
            WriteUnsupportedError: the server has no ``upsertBucket`` mutation.
        """
        from . import writes

        writes.upsert_run(self)
        self.summary.update()

    def save(self) -> None:
        """Same as :meth:`update`."""
        self.update()

    def delete(self, delete_artifacts: bool = False) -> None:
        """Delete the run upstream (online only)."""
        from . import writes

        writes.delete_run(self, delete_artifacts)

    def upload_file(self, path: str, root: str = ".") -> File:
        """Upload a file to the run (online only)."""
        from . import writes

        return writes.upload_file(self, path, root)

    def use_artifact(self, artifact: Artifact, use_as: str | None = None) -> Artifact:
        """Declare ``artifact`` an input of this run (online only)."""
        from . import writes

        return writes.use_artifact(self, artifact, use_as)

    def log_artifact(self, artifact: Artifact, aliases: Sequence[str] | None = None,
                     tags: Sequence[str] | None = None) -> Artifact:
        """Declare ``artifact`` an output of this run (online only)."""
        from . import writes

        return writes.log_artifact(self, artifact, aliases, tags)

    def _write_summary(self, summary: Mapping[str, Any]) -> None:
        from . import writes

        writes.upsert_summary(self, summary)

    # ------------------------------------------------------------------ display

    def __repr__(self) -> str:
        return f"<Run {'/'.join(self.path)} ({self.state})>"

    def _repr_html_(self) -> str:
        import html

        cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                        for k, v in (("id", self.id), ("name", self.name), ("state", self.state),
                                     ("created_at", self._attrs.get("createdAt")),
                                     ("tags", self._attrs.get("tags"))))
        return f"<table><caption>{html.escape(repr(self))}</caption>{cells}</table>"


class Runs(Paginator[Run]):
    """A project's runs matching a filter, in an order, loaded ``per_page`` at a time.

    Filters and order are compiled to SQL by :mod:`wandb_mirror.query` (a bad filter raises
    :class:`~wandb_mirror.errors.FilterError` here, before anything runs).
    """

    def __init__(self, api: Api, entity: str, project: str,
                 filters: Mapping[str, Any] | None = None, order: str | None = "+created_at",
                 per_page: int = 50, include_sweeps: bool = False, lazy: bool = True) -> None:
        super().__init__(per_page)
        self._api = api
        self.entity = entity
        self.project = project
        self.filters = dict(filters or {})
        self.order = order or "+created_at"
        self._include_sweeps = include_sweeps
        self._lazy = lazy
        self._snapshot: tuple[int, list[int]] | None = None
        self._head: tuple[int, list[int]] | None = None
        api._run_lists.validate(self.filters, self.order)  # raises FilterError now

    def _ordered_pks(self) -> tuple[int, list[int]]:
        """``(project pk, every matching run pk in order)``: taken once per ``Runs`` (so a
        refresh between pages cannot shift them), from the Api's :class:`RunListCache`.

        When the first page was read on its own (:meth:`_first_pks`) and the store changed
        since, the list keeps that page first and then every other run of the new list, so
        no run is served twice or skipped."""
        if self._snapshot is None:
            pk = self._api._project_pk(self.entity, self.project)
            pks = self._api._run_lists.get(pk, self.filters, self.order)
            if self._head is not None:
                served = self._head[1]
                if pks[:len(served)] != served:
                    seen = set(served)
                    pks = served + [p for p in pks if p not in seen]
            self._snapshot = (pk, pks)
        return self._snapshot

    def _first_pks(self, limit: int) -> tuple[int, list[int]]:
        """``(project pk, the first ``limit`` matching run pks)`` without ordering every match
        (a first page costs what it shows, not what the project holds)."""
        pk = self._api._project_pk(self.entity, self.project)
        head = self._api._run_lists.head(pk, self.filters, self.order, limit + 1)
        if len(head) <= limit:  # that is all of them
            self._snapshot = (pk, head)
        else:
            head = head[:limit]
            self._head = (pk, head)
        return pk, head

    def _page_pks(self, offset: int, limit: int) -> tuple[int, list[int]]:
        if self._snapshot is None and self._head is None and offset == 0:
            return self._first_pks(limit)
        pk, pks = self._ordered_pks()
        return pk, pks[offset:offset + limit]

    def _fetch(self, offset: int, limit: int) -> list[Run]:
        pk, wanted = self._page_pks(offset, limit)
        if not wanted:
            return []
        with read_scope(self._api._engine, f"listing runs of {self.entity}/{self.project}") as c:
            rows = {row.pk: row for row in run_rows(c, wanted)}
            users = user_rows(c, (r.user_pk for r in rows.values()))
        return [Run(self._api, self.entity, self.project, rows[p], users.get(rows[p].user_pk), pk)
                for p in wanted if p in rows]

    def _count(self) -> int:
        return len(self._ordered_pks()[1])

    def upgrade_to_full(self) -> None:
        """No-op: runs are always complete in the store."""
        self._lazy = False

    def histories(self, samples: int | None = 500, keys: list[str] | None = None,
                  x_axis: str = "_step", format: Literal["default", "pandas", "polars"] = "default",
                  stream: Literal["default", "system"] = "default", *,
                  union: bool = False) -> list[dict[str, Any]] | pd.DataFrame | pl.DataFrame:
        """Sampled history of every run, with a ``run_id`` column, columns sorted by name.

        With ``keys`` and ``format="pandas"``/``"polars"`` every run's columns are read with
        one query (no per-run round trip). Sampling is per run, as :meth:`Run.history`.
        """
        if format not in ("default", "pandas", "polars"):
            raise ValueError(f"Invalid format: {format}. Must be one of 'default', 'pandas', "
                             "'polars'")
        keys = check_keys(keys, strict=True)
        runs = list(self)
        if keys and format != "default" and stream == "default":
            frame = self._histories_frame(runs, samples, keys, x_axis, union)
            if format == "polars":
                pl = _polars()
                return pl.from_pandas(frame) if len(frame.columns) else pl.DataFrame()
            return frame
        out: list[dict[str, Any]] = []
        frames: list[pd.DataFrame] = []
        for run in runs:
            rows = sampled_rows(run, samples=samples, keys=keys, x_axis=x_axis, stream=stream,
                                union=union)
            if not rows:
                continue
            if format == "default":
                for row in rows:
                    row["run_id"] = run.id
                out.extend(rows)
            else:
                df = pd.DataFrame.from_records(rows)
                df["run_id"] = run.id
                frames.append(df)
        if format == "default":
            return out
        if not frames:
            return pd.DataFrame() if format == "pandas" else _empty_polars()
        combined = pd.concat(frames).reset_index(drop=True)
        combined = combined[sorted(combined.columns)]
        if format == "polars":
            return _polars().from_pandas(combined)
        return combined

    def _histories_frame(self, runs: list[Run], samples: int | None, keys: list[str],
                         x_axis: str, union: bool) -> pd.DataFrame:
        if not runs:
            return pd.DataFrame()
        self._api._project_pk(self.entity, self.project)
        wanted = list(dict.fromkeys([x_axis, *keys]))
        ids = {r._pk: r.id for r in runs}
        with session_scope(self._api._engine, f"reading histories of {self.entity}/"
                                              f"{self.project}") as s:
            frame = H.read_many_pandas(s, [r._pk for r in runs], keys=keys if union else wanted,
                                       samples=samples, union=union, run_column="run_id")
        if frame.empty:
            return pd.DataFrame()
        frame["run_id"] = frame["run_id"].map(ids)
        keep = [c for c in frame.columns if c == "run_id" or c in wanted]
        return frame[sorted(keep)]

    def __repr__(self) -> str:
        return f"<Runs {self.entity}/{self.project}>"


class RunListCache:
    """Ordered run pks per (project, filters, order), reused while the store is unchanged
    (see :mod:`wandb_mirror.api.cache`): repeated notebook queries then cost two ``stat``
    calls instead of a filter and a sort. Each ``Runs`` keeps the list it first got."""

    MAX_ENTRIES = 64

    def __init__(self, engine: Any) -> None:
        from .cache import GenerationCache, StoreGeneration

        self.engine = engine
        self._cache = GenerationCache(StoreGeneration(engine), self.MAX_ENTRIES)
        self._valid: set[tuple[str, str]] = set()

    def validate(self, filters: Mapping[str, Any], order: str) -> None:
        """Parse ``filters``/``order`` once (nothing runs) so bad input fails early.

        Raises:
            FilterError: malformed filter or order.
        """
        key = (values.canonical_json(filters), repr(order))
        if key not in self._valid:
            parse_run_filter(filters)
            parse_order(order)
            if len(self._valid) > 4 * self.MAX_ENTRIES:
                self._valid.clear()
            self._valid.add(key)

    def get(self, project_pk: int, filters: Mapping[str, Any], order: str) -> list[int]:
        """The ordered pks (computed when the cache is cold or the store changed).

        Raises:
            FilterError: malformed filter or order.
        """
        def compute() -> list[int]:
            with read_scope(self.engine, f"listing runs of project {project_pk}") as conn:
                return list(conn.scalars(run_pks_statement(project_pk, filters, order)))

        key = (project_pk, values.canonical_json(filters), repr(order))
        return self._cache.get_or_compute(key, compute)  # type: ignore[no-any-return]

    def head(self, project_pk: int, filters: Mapping[str, Any], order: str,
             limit: int) -> list[int]:
        """The first ``limit`` of :meth:`get`'s pks, computed without ordering every matching
        run when the full list is not cached (:func:`~wandb_mirror.query.first_run_pks`).

        Raises:
            FilterError: malformed filter or order.
        """
        key = (project_pk, values.canonical_json(filters), repr(order))
        full = self._cache.peek(key)
        if full is not None:
            return full[:limit]

        def compute() -> list[int]:
            with read_scope(self.engine, f"listing runs of project {project_pk}") as conn:
                return first_run_pks(conn, project_pk, filters, order, limit=limit)

        return self._cache.get_or_compute(  # type: ignore[no-any-return]
            (*key, "head", limit), compute)


def _empty_polars() -> Any:
    return _polars().DataFrame()


def _polars() -> Any:
    """The polars module, or a clear error saying how to install it."""
    try:
        import polars
    except ImportError:
        raise ImportError("format='polars' needs the polars package: "
                          "pip install 'wandb-mirror[polars]'") from None
    return polars


def load_run(api: Api, entity: str, project: str, run_id: str) -> Run:
    """One run from the store (after the freshness check).

    Raises:
        ValueError: the run is not in the store (``wandb.Api`` raises a ``CommError``
            subclass of ValueError too).
    """
    for attempt in range(2):
        pk = api._project_pk(entity, project)
        with session_scope(api._engine, f"reading run {entity}/{project}/{run_id}") as s:
            row = store_runs.get_run(s, pk, run_id)
            if row is not None and row.deleted_at is None:
                user = s.get(UserRow, row.user_pk) if row.user_pk is not None else None
                return Run(api, entity, project, row, user, pk)
        if api._offline or attempt:
            break
        # Online, a run the store does not hold may have started since the last refresh:
        # refresh the project once (incrementally) before saying it does not exist.
        api._freshness.mark_stale(entity, project)
    raise RunNotFoundError(f"Could not find run {entity}/{project}/{run_id} in the store"
                           f"{' (offline)' if api._offline else ''}")


class RunNotFoundError(ValueError):
    """The run is not in the project (``wandb.apis.public.runs.RunNotFoundError``)."""
