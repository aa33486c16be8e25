"""Pull whole projects from a W&B server into the store, incrementally and resumably.

Every page is written together with its watermark in one transaction, so a kill -9 at any
moment leaves a consistent store, and the next sync resumes with no duplicates and no gaps:
runs are upserted by id, history rows at or below the stored last step are skipped, events
are appended from the stored row count, and the ``created``/``heartbeat`` watermarks are
derived from what was committed.
"""
from __future__ import annotations

import fnmatch
import logging
import queue
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select

from ..errors import (GraphQLError, MirrorError, NotMirroredError, RemoteError, StoreError,
                      SyncInterrupted)
from ..remote import queries as Q
from ..remote.client import GraphQLClient
from ..store import artifacts as A
from ..store import files as F
from ..store import history as H
from ..store import reports as R
from ..store import sweeps as S
from ..store import values
from ..store.engine import session_scope
from ..store.models import (ArtifactCollection, ArtifactVersion, Project, ProjectSync, Report,
                            Run, RunSync, Sweep)
from ..store.runs import TERMINAL_STATES, get_run, now_iso, upsert_project, upsert_runs
from .details import RunPlan, batches, details_document
from .progress import NullProgress, Progress

__all__ = ["SyncOptions", "SyncReport", "sync_project"]

log = logging.getLogger(__name__)

MAX_NONTERMINAL_IN_FILTER = 2000
"""Above this many unfinished runs an incremental sync lists every run instead."""


@dataclass(frozen=True, kw_only=True)
class SyncOptions:
    """What a sync pulls and how (see ``[sync]`` in config.example.toml)."""

    full: bool = False
    history: bool = True
    events: bool = True
    files: bool = True
    sweeps: bool = True
    reports: bool = True
    artifacts: bool = True
    file_patterns: tuple[str, ...] = ()
    page_size: int = 50
    history_page_size: int = 10_000


@dataclass
class SyncReport:
    """What one sync did."""

    project: str
    runs: int = 0
    runs_changed: int = 0
    runs_deleted: int = 0
    history_rows: int = 0
    event_rows: int = 0
    files: int = 0
    file_bytes: int = 0
    sweeps: int = 0
    reports: int = 0
    artifact_versions: int = 0
    artifacts_deleted: int = 0
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        text = (f"{self.project}: {self.runs} runs listed ({self.runs_changed} changed, "
                f"{self.runs_deleted} marked deleted), {self.history_rows} history rows, "
                f"{self.event_rows} event rows, {self.files} files ({self.file_bytes} bytes "
                f"cached), {self.sweeps} sweeps, {self.reports} reports, "
                f"{self.artifact_versions} artifact versions")
        if self.artifacts_deleted:
            text += f" ({self.artifacts_deleted} marked deleted)"
        text += f" in {self.seconds:.1f}s"
        if self.skipped:
            text += f"; skipped {len(self.skipped)}: " + "; ".join(self.skipped)
        return text


class _ProjectSync:
    def __init__(self, engine: Engine, client: GraphQLClient, entity: str, project: str,
                 options: SyncOptions, progress: Progress,
                 stop: threading.Event | None = None) -> None:
        self.stop = stop
        self.engine = engine
        self.client = client
        self.entity = entity
        self.name = project
        self.opts = options
        self.progress = progress
        self.path = f"{entity}/{project}"
        self.report = SyncReport(self.path)
        self.vars = {"entity": entity, "project": project}
        self.project_pk: int | None = None

    def check_stop(self) -> None:
        """Raise SyncInterrupted between pages once a stop was requested (SIGTERM/SIGINT)."""
        if self.stop is not None and self.stop.is_set():
            raise SyncInterrupted(f"sync of {self.path} stopped on request; what was pulled is "
                                  "committed, the next sync continues from there")

    # ----------------------------------------------------------------- project

    def pull_project(self) -> None:
        data = self.client.execute(Q.PROJECT, self.vars)
        node = data.get("project")
        if not node:
            raise NotMirroredError(f"project {self.path} does not exist on "
                                   f"{self.client.transport.base_url} (or the key cannot see it)")
        with session_scope(self.engine, f"storing project {self.path}") as s:
            p = upsert_project(s, self.entity, self.name, upstream_id=node.get("id"),
                               internal_id=_str(node.get("internalId")),
                               created_at=node.get("createdAt"),
                               is_benchmark=bool(node.get("isBenchmark")),
                               read_only=node.get("readOnly"))
            if s.get(ProjectSync, p.pk) is None:
                s.add(ProjectSync(project_pk=p.pk))
            state = s.get(ProjectSync, p.pk)
            state.last_attempt_at = now_iso()
            self.project_pk = p.pk

    # ----------------------------------------------------------------- runs

    def _run_filter(self) -> tuple[dict[str, Any] | None, bool]:
        """The runs filter of this sync and whether it lists every run."""
        with session_scope(self.engine) as s:
            state = s.get(ProjectSync, self.project_pk)
            created = state.runs_created_watermark if state else None
            if self.opts.full or created is None:
                return None, True
            hb = s.scalar(select(func.max(Run.heartbeat_at)).where(
                Run.project_pk == self.project_pk))
            open_ids = list(s.scalars(select(Run.run_id).where(
                Run.project_pk == self.project_pk, Run.deleted_at.is_(None),
                (Run.state.is_(None)) | (Run.state.not_in(sorted(TERMINAL_STATES))))))
        if len(open_ids) > MAX_NONTERMINAL_IN_FILTER:
            return None, True
        clauses: list[dict[str, Any]] = [{"createdAt": {"$gte": created}}]
        if hb:
            clauses.append({"heartbeatAt": {"$gt": hb}})
        if open_ids:
            clauses.append({"name": {"$in": open_ids}})
        return {"$or": clauses}, False

    def pull_runs(self) -> list[str]:
        """List runs (all, or what may have changed); returns the ids of changed runs."""
        filters, listing_all = self._run_filter()
        variables = {**self.vars, "order": "+created_at",
                     "filters": values.dumps(filters or {})}
        changed: list[str] = []
        seen: set[str] = set()
        key = f"{self.path}:runs"
        self.progress.start(key, f"{self.path} runs")
        listing = self.client.pages(Q.RUNS, variables, ("project", "runs"),
                           first=self.opts.page_size)
        for data, nodes in listing:
            self.check_stop()
            total = (data.get("project") or {}).get("runCount")
            good = []
            for node in nodes:
                problem = _malformed_run(node)
                if problem:
                    self.report.skipped.append(f"run {self.path}/{node.get('name')}: {problem}")
                    continue
                good.append(node)
                seen.add(node["name"])
            with session_scope(self.engine, f"storing runs of {self.path}") as s:
                project = s.get(Project, self.project_pk)
                before = {r.run_id: _fingerprint(r) for r in s.scalars(select(Run).where(
                    Run.project_pk == project.pk, Run.run_id.in_([n["name"] for n in good])))}
                rows = upsert_runs(s, project, good)
                for row in rows:
                    if before.get(row.run_id) != _fingerprint(row):
                        changed.append(row.run_id)
                # the watermark moves with the page, in the same transaction
                state = s.get(ProjectSync, project.pk)
                newest = max((n.get("createdAt") or "" for n in good), default="")
                if newest and (state.runs_created_watermark or "") < newest:
                    state.runs_created_watermark = newest
            self.report.runs += len(nodes)
            self.progress.advance(key, len(nodes), total=total)
        if listing_all and listing.complete:
            self.report.runs_deleted = self._mark_gone(Run, Run.run_id, seen)
        self.report.runs_changed = len(changed)
        return _merge(changed, self._unfinished_details())

    def _unfinished_details(self) -> list[str]:
        """Runs whose history/files were not completely pulled (an interrupted sync, an error)."""
        with session_scope(self.engine) as s:
            rows = s.execute(select(Run.run_id).outerjoin(RunSync, RunSync.run_pk == Run.pk).where(
                Run.project_pk == self.project_pk, Run.deleted_at.is_(None),
                (RunSync.run_pk.is_(None)) | (RunSync.last_error.is_not(None))
                | (RunSync.seen_heartbeat_at.is_distinct_from(Run.heartbeat_at))
                | (RunSync.seen_history_line_count.is_distinct_from(Run.history_line_count))
                | (RunSync.seen_state.is_distinct_from(Run.state))
            ).order_by(Run.created_ts, Run.pk)).scalars().all()
        return list(rows)

    # ----------------------------------------------------------------- per run

    def pull_run_details(self, run_ids: Sequence[str]) -> None:
        """History, events, files and artifact links of the given runs.

        Runs are planned from the store, their first pages fetched in batched requests
        (:mod:`.details`), and whatever does not fit in a first page paged per run. A run that
        fails is recorded and skipped; a batch that fails is retried run by run.
        """
        key = f"{self.path}:details"
        if not run_ids:
            return
        self.progress.start(key, f"{self.path} history/files", total=len(run_ids))
        plans, singles = self._plan_details(run_ids)
        failed: set[str] = set()
        for run_id in singles:  # long histories: parquet exports and paged windows
            # Not complete yet: the run's events/files/artifacts come in a batch below, and
            # only then is the run recorded as synced (a kill in between must not lose them).
            if not self._guarded(run_id, lambda r=run_id: self.pull_history(r), complete=False):
                failed.add(run_id)
        plans = [p for p in plans if p.run_id not in failed]
        for batch in batches(plans, max(1, self.opts.history_page_size)):
            self.check_stop()
            query, variables = details_document(batch)
            try:
                data = self.client.execute(query, {**self.vars, **variables})
            except (GraphQLError, RemoteError) as exc:
                # A server may refuse a large aliased document (GraphQL errors, or HTTP 400/413
                # for query complexity): fall back to one run at a time.
                if not isinstance(exc, GraphQLError) and exc.status not in (400, 413, 422):
                    raise
                log.warning("batched details failed (%s); retrying run by run", exc)
                for plan in batch:
                    self._guarded(plan.run_id, lambda r=plan.run_id: self._pull_one(r))
                    self.progress.advance(key)
                continue
            project = data.get("project") or {}
            for i, plan in enumerate(batch):
                node = project.get(f"r{i}")
                self._guarded(plan.run_id, lambda p=plan, n=node: self._apply_details(p, n))
                self.progress.advance(key)
        for plan in plans:
            if plan.empty:
                self._guarded(plan.run_id, lambda: None)
                self.progress.advance(key)

    def _plan_details(self, run_ids: Sequence[str]) -> tuple[list[RunPlan], list[str]]:
        plans: list[RunPlan] = []
        singles: list[str] = []
        page = max(1, self.opts.history_page_size)
        with session_scope(self.engine) as s:
            for run_id in run_ids:
                run = get_run(s, self.project_pk, run_id)
                if run is None:
                    continue
                plan = RunPlan(run_id=run_id, run_pk=run.pk, files=self.opts.files,
                               artifacts=self.opts.artifacts)
                if self.opts.history:
                    hk = _safe_json(run.history_keys_raw)
                    last = hk.get("lastStep") if isinstance(hk, Mapping) else None
                    stored = H.last_step(s, run.pk)
                    lo = 0 if stored is None else stored + 1
                    if isinstance(last, int) and last >= lo:
                        if last - lo + 1 > 2 * page:
                            singles.append(run_id)
                        else:
                            plan.history = (lo, min(lo + page, last + 1))
                            plan.history_last = last
                if self.opts.events:
                    have = H.row_count(s, run.pk, "events")
                    if run.events_line_count is None or run.events_line_count > have:
                        plan.events_samples = _event_samples(run.events_line_count, have)
                        plan.events_expected = max(0, (run.events_line_count or 0) - have)
                plans.append(plan)
        return plans, singles

    def _apply_details(self, plan: RunPlan, node: Mapping[str, Any] | None) -> None:
        if node is None:
            raise NotMirroredError(f"run {self.path}/{plan.run_id} disappeared upstream")
        if plan.history:
            hi = plan.history[1]
            self._store_history(plan.run_id, plan.run_pk, hi, node.get("history") or [])
            if plan.history_last is not None and hi <= plan.history_last:
                self._page_history(plan.run_id, plan.run_pk, hi, plan.history_last)
        if plan.events_samples:
            self._store_events(plan.run_id, node.get("events"))
        if plan.files:
            conn = node.get("files") or {}
            self._store_files(plan.run_id, _nodes(conn))
            if (conn.get("pageInfo") or {}).get("hasNextPage"):
                self.pull_files(plan.run_id)
        if plan.artifacts:
            more = False
            for field_, direction in (("inputArtifacts", "input"), ("outputArtifacts", "output")):
                conn = node.get(field_) or {}
                self._store_run_artifacts(plan.run_id, direction, _nodes(conn))
                more = more or bool((conn.get("pageInfo") or {}).get("hasNextPage"))
            if more:
                self.pull_run_artifacts(plan.run_id)

    def _pull_one(self, run_id: str) -> None:
        if self.opts.history:
            self.pull_history(run_id)
        if self.opts.events:
            self.pull_events(run_id)
        if self.opts.files:
            self.pull_files(run_id)
        if self.opts.artifacts:
            self.pull_run_artifacts(run_id)

    def _guarded(self, run_id: str, work: Any, *, complete: bool = True) -> bool:
        """Run ``work``; on success record the run as synced (when ``complete``), on a data
        error record the error and skip the run. Returns whether ``work`` succeeded."""
        self.check_stop()
        try:
            work()
        except SyncInterrupted:
            raise
        except (GraphQLError, StoreError, ValueError, NotMirroredError) as exc:
            msg = f"run {self.path}/{run_id}: {exc}"
            log.warning("skipping %s", msg)
            self.report.skipped.append(msg)
            self._run_state(run_id, error=str(exc))
            return False
        if complete:
            self._run_state(run_id, error=None)
        return True

    def _run_row(self, s: Any, run_id: str) -> Run:
        run = get_run(s, self.project_pk, run_id)
        if run is None:
            raise StoreError(f"run {self.path}/{run_id} vanished from the store during sync")
        return run

    def _run_state(self, run_id: str, *, error: str | None) -> None:
        with session_scope(self.engine) as s:
            run = self._run_row(s, run_id)
            state = s.get(RunSync, run.pk) or RunSync(run_pk=run.pk)
            s.add(state)
            state.seen_state = run.state
            state.seen_heartbeat_at = run.heartbeat_at
            state.seen_history_line_count = run.history_line_count
            state.last_sync_at = now_iso()
            state.last_error = error
            state.last_error_at = now_iso() if error else None

    def pull_history(self, run_id: str) -> None:
        with session_scope(self.engine) as s:
            run = self._run_row(s, run_id)
            hk = values.loads(run.history_keys_raw) if run.history_keys_raw else None
            upstream_last = hk.get("lastStep") if isinstance(hk, Mapping) else None
            stored_last = H.last_step(s, run.pk)
            run_pk = run.pk
        if upstream_last is None or upstream_last < 0:
            return
        if stored_last is not None and stored_last >= upstream_last:
            return
        lo = 0 if stored_last is None else stored_last + 1
        if upstream_last - lo + 1 > 2 * self.opts.history_page_size:
            lo = self._pull_parquet(run_id, run_pk, lo)
        self._page_history(run_id, run_pk, lo, upstream_last)

    def _pull_parquet(self, run_id: str, run_pk: int, lo: int) -> int:
        """Ingest exported parquet history when the server offers it; returns where live
        paging must start."""
        data = self.client.execute(Q.PARQUET_HISTORY, {**self.vars, "run": run_id})
        ph = ((data.get("project") or {}).get("run") or {}).get("parquetHistory") or {}
        urls = [u for u in ph.get("parquetUrls") or [] if u]
        if not urls:
            return lo
        live_steps = [r.get("_step") for r in ph.get("liveData") or []
                      if isinstance(r, Mapping) and isinstance(r.get("_step"), (int, float))]
        exported_max = lo - 1
        key = f"{self.path}:history"
        self.progress.start(key, f"{self.path} history rows")
        for url in urls:
            with tempfile.TemporaryFile() as spool:  # streamed to disk: memory stays bounded
                self.client.download(url, spool)
                spool.seek(0)
                exported_max = self._ingest_parquet(run_id, run_pk, lo, spool, exported_max)
        start = exported_max + 1
        if live_steps:
            start = min(start, int(min(live_steps)))
        return max(lo, start)

    def _ingest_parquet(self, run_id: str, run_pk: int, lo: int, source: Any,
                        exported_max: int) -> int:
        """Append a parquet export batch by batch, columnar (no per-row dicts), each batch
        with its watermark in one transaction."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        key = f"{self.path}:history"
        reader = pq.ParquetFile(source)
        batch_rows = max(H.CHUNK_ROWS, self.opts.history_page_size)
        for batch in reader.iter_batches(batch_size=batch_rows):
            self.check_stop()
            table = pa.Table.from_batches([batch], schema=reader.schema_arrow)
            if "_step" in table.column_names and table.num_rows:
                steps = table.column("_step").to_numpy()
                exported_max = max(exported_max, int(steps.max()))
            with session_scope(self.engine, f"storing history of {self.path}/{run_id}") as s:
                added = H.append_arrow(s, run_pk, table)
                state = s.get(RunSync, run_pk) or RunSync(run_pk=run_pk)
                s.add(state)
                state.history_last_step = exported_max
            self.report.history_rows += added
            self.progress.advance(key, added)
        return exported_max

    def _page_history(self, run_id: str, run_pk: int, lo: int, upstream_last: int) -> None:
        """Page ``history(minStep, maxStep)`` from ``lo`` to ``upstream_last``.

        A background thread fetches the next window while this one is parsed and written
        (at most two pages are held), so the server's work and ours overlap.
        """
        key = f"{self.path}:history"
        self.progress.start(key, f"{self.path} history rows")
        for hi, items in _prefetched(self._history_windows(run_id, lo, upstream_last)):
            self._store_history(run_id, run_pk, hi, items)

    def _store_history(self, run_id: str, run_pk: int, hi: int, items: Sequence[Any]) -> None:
        """Append one window of rows and move the run's history watermark, atomically."""
        self.check_stop()
        rows = _json_rows(items)
        with session_scope(self.engine, f"storing history of {self.path}/{run_id}") as s:
            added = H.append_rows(s, run_pk, rows)
            state = s.get(RunSync, run_pk) or RunSync(run_pk=run_pk)
            s.add(state)
            state.history_last_step = hi - 1
        self.report.history_rows += added
        self.progress.advance(f"{self.path}:history", added)

    def _history_windows(self, run_id: str, lo: int, upstream_last: int
                         ) -> Iterator[tuple[int, list[Any]]]:
        """Yield ``(maxStep, raw rows)`` per window; ``samples = maxStep - minStep`` so the
        server never samples. Empty windows (sparse or late-starting steps) widen, up to 16
        pages."""
        page = max(1, self.opts.history_page_size)
        width = page
        vars_ = {**self.vars, "run": run_id}
        for _ in range(10_000_000):
            if lo > upstream_last:
                return
            hi = min(lo + width, upstream_last + 1)
            data = self.client.execute(Q.HISTORY_PAGE, {**vars_, "minStep": lo, "maxStep": hi,
                                                        "samples": hi - lo})
            run_node = (data.get("project") or {}).get("run")
            if run_node is None:
                raise NotMirroredError(f"run {self.path}/{run_id} disappeared upstream")
            items = run_node.get("history") or []
            yield hi, items
            width = page if items else min(width * 2, page * 16)
            lo = hi

    def pull_events(self, run_id: str) -> None:
        with session_scope(self.engine) as s:
            run = self._run_row(s, run_id)
            have = H.row_count(s, run.pk, "events")
            upstream = run.events_line_count
        if upstream is not None and upstream <= have:
            return
        data = self.client.execute(Q.EVENTS, {**self.vars, "run": run_id,
                                              "samples": _event_samples(upstream, have)})
        run_node = (data.get("project") or {}).get("run") or {}
        self._store_events(run_id, run_node.get("events"))

    def _store_events(self, run_id: str, items: Sequence[Any] | None) -> None:
        rows = _json_rows(items)
        with session_scope(self.engine, f"storing events of {self.path}/{run_id}") as s:
            run = self._run_row(s, run_id)
            if len(rows) > H.row_count(s, run.pk, "events"):
                self.report.event_rows += H.append_rows(s, run.pk, rows, "events",
                                                        first_ordinal=0)

    def pull_files(self, run_id: str) -> None:
        vars_ = {**self.vars, "run": run_id}
        for _, nodes in self.client.pages(Q.FILES, vars_, ("project", "run", "files"),
                                          first=max(self.opts.page_size, 100)):
            self._store_files(run_id, nodes)

    def _store_files(self, run_id: str, nodes: list[dict[str, Any]]) -> None:
        fetch: list[dict[str, Any]] = []
        with session_scope(self.engine, f"storing files of {self.path}/{run_id}") as s:
            run = self._run_row(s, run_id)
            F.upsert_files(s, run, nodes)
            for node in nodes:
                if (self.opts.file_patterns and node.get("url") and node.get("md5")
                        and any(fnmatch.fnmatch(node["name"], pat)
                                for pat in self.opts.file_patterns)
                        and not F.has_content(s, node["md5"])):
                    fetch.append(node)
        self.report.files += len(nodes)
        for node in fetch:
            data = self.client.get_bytes(node["url"])
            with session_scope(self.engine, f"caching {self.path}/{run_id}/{node['name']}") as s:
                F.put_content(s, node["md5"], data)
            self.report.file_bytes += len(data)

    def pull_run_artifacts(self, run_id: str) -> None:
        vars_ = {**self.vars, "run": run_id}
        for doc, field_, direction in ((Q.INPUT_ARTIFACTS, "inputArtifacts", "input"),
                                       (Q.OUTPUT_ARTIFACTS, "outputArtifacts", "output")):
            for _, nodes in self.client.pages(doc, vars_, ("project", "run", field_), first=100):
                self._store_run_artifacts(run_id, direction, nodes)

    def _store_run_artifacts(self, run_id: str, direction: str,
                             nodes: list[dict[str, Any]]) -> None:
        if not nodes:
            return
        with session_scope(self.engine, f"storing artifacts of {self.path}/{run_id}") as s:
            project = s.get(Project, self.project_pk)
            run = self._run_row(s, run_id)
            for node in nodes:
                self._ensure_collection_of(s, project, node)
            A.upsert_run_artifacts(s, project, run, direction, nodes)

    def _ensure_collection_of(self, s: Any, project: Project, node: Mapping[str, Any]) -> None:
        seq = (node.get("artifactSequence") or {}).get("name")
        atype = (node.get("artifactType") or {}).get("name")
        # a collection marked deleted stays so: only the collection listing revives it
        if seq and atype and A.get_collection(s, project.pk, seq, include_deleted=True) is None:
            A.upsert_collections(s, project, [{"name": seq}], type_name=atype)

    # ----------------------------------------------------------------- project objects

    def pull_sweeps(self) -> None:
        self.report.sweeps += self._pull_listing(Q.SWEEPS, "sweeps", S.upsert_sweeps,
                                                 Sweep, Sweep.name, "name")

    def pull_reports(self) -> None:
        self.report.reports += self._pull_listing(Q.REPORTS, "allViews", R.upsert_reports,
                                                  Report, Report.upstream_id, "id")

    def _pull_listing(self, query: str, field_: str, upsert: Any, model: Any, key: Any,
                      node_key: str) -> int:
        """Page a whole project listing (sweeps, reports) into the store, then mark what it
        no longer holds as deleted; returns the number of objects listed."""
        seen: set[str] = set()
        listing = self.client.pages(query, self.vars, ("project", field_),
                           first=self.opts.page_size)
        for _, nodes in listing:
            self.check_stop()
            with session_scope(self.engine, f"storing {field_} of {self.path}") as s:
                upsert(s, s.get(Project, self.project_pk), nodes)
            seen.update(n[node_key] for n in nodes)
        if listing.complete:
            self._mark_gone(model, key, seen)
        return len(seen)

    def _mark_gone(self, model: Any, key: Any, seen: set[str]) -> int:
        """After a complete listing: mark the project's objects it did not hold as deleted
        upstream (kept, hidden from listings; a later listing holding them revives them).
        Returns how many were marked."""
        with session_scope(self.engine, f"marking deleted {model.__tablename__} of {self.path}") as s:
            stamp = now_iso()
            gone = [row for row in s.scalars(select(model).where(
                model.project_pk == self.project_pk, model.deleted_at.is_(None)))
                if getattr(row, key.key) not in seen]
            for row in gone:
                row.deleted_at = stamp
        return len(gone)

    def pull_artifacts(self) -> None:
        """Types, then each type's collections, then the versions of the collections that
        changed; afterwards, what complete listings no longer hold is marked deleted."""
        types: list[dict[str, Any]] = []
        type_listing = self.client.pages(Q.ARTIFACT_TYPES, self.vars,
                                ("project", "artifactTypes"), first=100)
        for _, nodes in type_listing:
            self.check_stop()
            types.extend(nodes)
        with session_scope(self.engine, f"storing artifact types of {self.path}") as s:
            A.upsert_artifact_types(s, s.get(Project, self.project_pk), types)
        complete = type_listing.complete
        seen: set[str] = set()
        for tnode in types:
            tvars = {**self.vars, "type": tnode["name"]}
            stale: list[str] = []
            listing = self.client.pages(Q.ARTIFACT_COLLECTIONS, tvars,
                               ("project", "artifactType", "artifactCollections"), first=100)
            for _, nodes in listing:
                self.check_stop()
                with session_scope(self.engine, f"storing collections of {self.path}") as s:
                    project = s.get(Project, self.project_pk)
                    before = self._collection_states(s, [n["name"] for n in nodes])
                    A.upsert_collections(s, project, nodes, type_name=tnode["name"])
                for node in nodes:
                    seen.add(node["name"])
                    if self._versions_stale(node, before.get(node["name"])):
                        stale.append(node["name"])
            complete = complete and listing.complete
            for coll in stale:
                self._pull_versions(tnode["name"], coll)
        if complete:
            with session_scope(self.engine, f"marking deleted artifacts of {self.path}") as s:
                _, versions = A.mark_collections_gone(s, self.project_pk, seen, now_iso())
            self.report.artifacts_deleted += versions

    def _collection_states(self, s: Any, names: Sequence[str]
                           ) -> dict[str, tuple[str | None, bool, int]]:
        """``name -> (updated_at, deleted, live version count)`` of stored collections."""
        rows = s.execute(
            select(ArtifactCollection.name, ArtifactCollection.updated_at,
                   ArtifactCollection.deleted_at, func.count(ArtifactVersion.pk))
            .outerjoin(ArtifactVersion, (ArtifactVersion.collection_pk == ArtifactCollection.pk)
                       & ArtifactVersion.deleted_at.is_(None))
            .where(ArtifactCollection.project_pk == self.project_pk,
                   ArtifactCollection.name.in_(list(names)))
            .group_by(ArtifactCollection.pk)).all()
        return {name: (updated, deleted is not None, count)
                for name, updated, deleted, count in rows}

    def _versions_stale(self, node: Mapping[str, Any],
                        before: tuple[str | None, bool, int] | None) -> bool:
        """Whether a listed collection's versions must be paged again: new, revived, changed
        (``updatedAt``), or holding another number of versions than the store (a version
        deleted upstream need not touch ``updatedAt``)."""
        if self.opts.full or before is None or node.get("updatedAt") is None:
            return True
        updated, deleted, stored = before
        if deleted or updated != node.get("updatedAt"):
            return True
        total = (node.get("versions") or {}).get("totalCount")
        # a portfolio's versions are stored under their source sequences: no count to compare
        return (isinstance(total, int) and node.get("__typename") != "ArtifactPortfolio"
                and total != stored)

    def _pull_versions(self, type_name: str, collection: str) -> None:
        cvars = {**self.vars, "type": type_name, "collection": collection}
        seen: set[str] = set()
        listing = self.client.pages(Q.ARTIFACT_VERSIONS, cvars,
                           ("project", "artifactType", "artifactCollection", "artifacts"),
                           first=100)
        for _, nodes in listing:
            self.check_stop()
            need_manifest: list[tuple[str, str | None]] = []
            with session_scope(self.engine, f"storing versions of {self.path}/{collection}") as s:
                project = s.get(Project, self.project_pk)
                for node in nodes:
                    old = A.get_version_by_id(s, node["id"])
                    if old is None or old.manifest_raw is None or old.digest != node.get("digest"):
                        need_manifest.append((node["id"], node.get("digest")))
                A.upsert_artifacts(s, project, nodes)
            seen.update(n["id"] for n in nodes)
            self.report.artifact_versions += len(nodes)
            for artifact_id, _digest in need_manifest:
                self._pull_manifest(artifact_id)
        if not listing.complete:
            return
        with session_scope(self.engine, f"marking deleted versions of {self.path}/{collection}") as s:
            coll = A.get_collection(s, self.project_pk, collection, include_deleted=True)
            if coll is not None:
                self.report.artifacts_deleted += A.mark_versions_gone(s, coll.pk, seen, now_iso())

    def _pull_manifest(self, artifact_id: str) -> None:
        data = self.client.execute(Q.MANIFEST, {"id": artifact_id})
        url = ((((data.get("artifact") or {}).get("currentManifest") or {}).get("file") or {})
               .get("directUrl"))
        if not url:
            return
        text = self.client.get_bytes(url)
        with session_scope(self.engine, f"storing manifest of artifact {artifact_id}") as s:
            version = A.get_version_by_id(s, artifact_id)
            if version is not None:
                A.put_manifest(s, version, text)

    # ----------------------------------------------------------------- driver

    def run(self) -> SyncReport:
        started = time.monotonic()
        try:
            self.pull_project()
            changed = self.pull_runs()
            self.pull_run_details(changed)
            for wanted, pull in ((self.opts.sweeps, self.pull_sweeps),
                                 (self.opts.reports, self.pull_reports),
                                 (self.opts.artifacts, self.pull_artifacts)):
                if wanted:
                    self.check_stop()
                    pull()
        except MirrorError as exc:
            self._project_state(error=str(exc))
            raise
        self.report.seconds = time.monotonic() - started
        self._project_state(error="; ".join(self.report.skipped) or None, success=True)
        return self.report

    def _project_state(self, *, error: str | None, success: bool = False) -> None:
        if self.project_pk is None:
            return
        with session_scope(self.engine) as s:
            state = s.get(ProjectSync, self.project_pk)
            stamp = now_iso()
            if success:
                state.last_sync_at = stamp
                if self.opts.full or state.last_full_sync_at is None:
                    state.last_full_sync_at = stamp
            state.last_error = error
            state.last_error_at = stamp if error else None


_DONE = object()


def _prefetched(source: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """Iterate ``source`` in a background thread, ``depth`` items ahead; errors re-raise here."""
    out: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                while not stop.is_set():
                    try:
                        out.put((None, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            out.put((None, _DONE))
        except BaseException as exc:  # handed to the consumer
            out.put((exc, None))

    thread = threading.Thread(target=produce, name="wandb-mirror-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            exc, item = out.get()
            if exc is not None:
                raise exc
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                out.get(timeout=0.05)
            except queue.Empty:
                pass
            thread.join(0.05)


def _nodes(conn: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [e["node"] for e in conn.get("edges") or [] if isinstance(e, dict) and e.get("node")]


def _safe_json(text: str | None) -> Any:
    try:
        return values.loads(text)
    except ValueError:
        return None


def _event_samples(upstream: int | None, have: int) -> int:
    """``events(samples)`` large enough to get every row (the stream is not paged)."""
    return max(upstream or 0, have + 1, 1) + 1000


def _json_rows(items: Sequence[Any] | None) -> list[Any]:
    """Decode a page of rows sent as JSON strings, in one parser call (much faster than one
    ``loads`` per row)."""
    if not items:
        return []
    if all(isinstance(r, str) for r in items):
        return values.loads("[" + ",".join(items) + "]")
    return [values.loads(r) if isinstance(r, str) else r for r in items]


def _merge(first: Iterable[str], second: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    return [x for x in (*first, *second) if not (x in seen or seen.add(x))]


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _fingerprint(run: Run) -> tuple[Any, ...]:
    return (run.state, run.heartbeat_at, run.history_line_count, run.events_line_count,
            run.summary_raw, run.config_raw, run.tags_raw, run.notes, run.display_name,
            run.history_keys_raw, run.deleted_at)


def _malformed_run(node: Mapping[str, Any]) -> str | None:
    if not isinstance(node.get("name"), str) or not node["name"]:
        return "run node without a name"
    for field_ in ("config", "summaryMetrics", "systemMetrics"):
        raw = node.get(field_)
        if raw is None:
            continue
        if isinstance(raw, str):
            try:
                parsed = values.loads(raw)
            except ValueError as exc:
                return f"{field_} is not JSON ({exc})"
            if parsed is not None and not isinstance(parsed, dict):
                return f"{field_} is not a JSON object"
        elif not isinstance(raw, dict):
            return f"{field_} is neither a JSON string nor an object"
    return None


def sync_project(
    engine: Engine,
    client: GraphQLClient,
    path: str,
    options: SyncOptions | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> SyncReport:
    """Sync one project ``entity/project`` into the store.

    ``stop``: when set, the sync ends after the page in hand, raising SyncInterrupted.

    Raises:
        NotMirroredError: the project does not exist upstream.
        RemoteError: the server could not be used (after retries).
    """
    entity, sep, project = path.strip("/").partition("/")
    if not sep or not entity or not project or "/" in project:
        raise MirrorError(f"project path must be ENTITY/PROJECT, got {path!r}")
    return _ProjectSync(engine, client, entity, project, options or SyncOptions(),
                        progress or NullProgress(), stop).run()
