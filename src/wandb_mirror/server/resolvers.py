"""Resolvers of the root, ``Project`` and ``Run`` fields, history included.

Run listings go through the query engine (``wandb_mirror.query``: Mongo filters, order
strings); history through ``wandb_mirror.store.history`` (deterministic sampling that keeps the
first and last row). Step ranges: ``history(minStep, maxStep)`` treats ``maxStep`` as EXCLUSIVE,
``sampledHistory`` specs as INCLUSIVE, as wandb-core expects of each.
"""
from __future__ import annotations

import json
from operator import attrgetter, itemgetter
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo
from sqlalchemy import func, select

from ..errors import FilterError
from ..query import count_runs, select_runs
from ..store import files as store_files
from ..store import history
from ..store import runs as store_runs
from ..store.models import Project, Run
from ..store.rows import RUN_ATTRS, RunRow, run_rows
from ..store.values import dumps, loads, nonfinite_as_strings
from .encode import RawJSON
from .nodes import RequestContext, connection, page_window, parse_json_arg

__all__ = ["RESOLVERS", "run_dict"]

DEFAULT_SAMPLES = 500


def _ctx(info: GraphQLResolveInfo) -> RequestContext:
    return info.context  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- runs queries


def _filter_error(exc: Exception, what: str) -> GraphQLError:
    return GraphQLError(f"invalid {what}: {exc}")


# ----------------------------------------------------------------------------- root


def resolve_viewer(_root: Any, info: GraphQLResolveInfo) -> dict[str, Any]:
    ctx = _ctx(info)
    entities = list(ctx.session.scalars(select(Project.entity).distinct().order_by(Project.entity)))
    entity = ctx.options.viewer_entity or (entities[0] if entities else "mirror")
    return {"__typename": "User", "id": "VXNlcjptaXJyb3I=", "name": "wandb-mirror",
            "username": entity, "email": None, "admin": False, "flags": "{}", "entity": entity,
            "deletedAt": None, "photoUrl": None, "accountType": "USER",
            "apiKeys": {"edges": []},
            "teams": {"edges": [{"node": {"id": e, "name": e}} for e in entities if e != entity]}}


def resolve_server_info(_root: Any, _info: GraphQLResolveInfo) -> dict[str, Any]:
    return {"features": [], "cliVersionInfo": {}, "latestLocalVersionInfo": None}


def resolve_models(_root: Any, info: GraphQLResolveInfo, entityName: str | None = None,
                   after: str | None = None, first: int | None = None, **_: Any) -> dict[str, Any]:
    ctx = _ctx(info)
    offset, limit = page_window(ctx, first, after)
    stmt = select(Project)
    if entityName:
        stmt = stmt.where(Project.entity == entityName)
    rows = list(ctx.session.scalars(stmt.order_by(Project.pk).offset(offset).limit(limit + 1)))
    return connection(rows, offset, limit, ctx.project)


def resolve_project(_root: Any, info: GraphQLResolveInfo, name: str | None = None,
                    entityName: str | None = None) -> dict[str, Any] | None:
    ctx = _ctx(info)
    if not name:
        return None
    key = ("project", entityName or None, name)
    node = ctx.shared(key)  # every page of a listing asks for its project again
    if node is None:
        stmt = select(Project).where(Project.name == name)
        if entityName:
            stmt = stmt.where(Project.entity == entityName)
        row = ctx.session.scalars(stmt.order_by(Project.pk).limit(1)).first()
        if row is None:
            return None
        node = ctx.project(row)
        ctx.share(key, node)
    return node  # type: ignore[no-any-return]


def resolve_entity(_root: Any, info: GraphQLResolveInfo, name: str | None = None) -> dict[str, Any] | None:
    ctx = _ctx(info)
    if not name or ctx.session.scalar(select(func.count()).select_from(Project)
                                      .where(Project.entity == name)) == 0:
        return None
    return {"id": name, "name": name, "available": False, "isTeam": True, "readOnly": True,
            "members": [], "entityType": "TEAM"}


# ----------------------------------------------------------------------------- project


_DECODE = json.JSONDecoder(strict=False).decode
_NODE_FIELDS = (
    ("name", "run_id"), ("projectId", "project_internal_id"), ("id", "storage_id"),
    ("displayName", "display_name"), ("state", "state"), ("sweepName", "sweep_name"),
    ("group", "group"), ("jobType", "job_type"), ("commit", "commit"),
    ("description", "description"), ("notes", "notes"), ("host", "host"),
    ("readOnly", "read_only"), ("createdAt", "created_at"), ("heartbeatAt", "heartbeat_at"),
    ("updatedAt", "updated_at"), ("historyLineCount", "history_line_count"),
    ("eventsLineCount", "events_line_count"), ("config", "config_raw"),
    ("summaryMetrics", "summary_raw"), ("systemMetrics", "system_metrics_raw"),
)
"""``Run`` fields copied from a column as they are: (GraphQL name, column attribute)."""
_NODE_KEYS = tuple(name for name, _ in _NODE_FIELDS)
_NEEDED = tuple(attr for _, attr in _NODE_FIELDS) + ("tags_raw", "user_pk", "extra_raw")
_FROM_ROW = itemgetter(*[RUN_ATTRS.index(attr) for attr in _NEEDED])  # a RunRow: by position
_FROM_OBJECT = attrgetter(*_NEEDED)  # an ORM ``Run``


def _base_run_dict(ctx: RequestContext, run: Any) -> dict[str, Any]:
    values = _FROM_ROW(run) if isinstance(run, RunRow) else _FROM_OBJECT(run)
    node: dict[str, Any] = dict(zip(_NODE_KEYS, values))
    tags_raw, user_pk, extra_raw = values[-3:]
    node["__typename"] = "Run"
    node["tags"] = _DECODE(tags_raw) if tags_raw is not None else []
    node["user"] = ctx.user_node(user_pk)
    node["_run"] = run
    if extra_raw:
        extra = loads(extra_raw)
        if isinstance(extra, dict):
            for key, value in extra.items():
                node.setdefault(key, value)
    return node


def run_dict(ctx: RequestContext, run: Run, project: dict[str, Any]) -> dict[str, Any]:
    """A ``Run`` node: what :func:`wandb_mirror.store.runs.run_node` gives (a test checks they
    agree) plus the raw JSON strings untouched, built once per run and store generation."""
    base = None
    if ctx.run_nodes is not None:
        base = ctx.run_nodes.get(ctx.node_token, run.pk)
    if base is None:
        base = _base_run_dict(ctx, run)
        if ctx.run_nodes is not None:
            ctx.run_nodes.put(ctx.node_token, run.pk, base)
    node = dict(base)
    node["project"] = project
    return node


def _page_runs(ctx: RequestContext, pks: list[int], project: dict[str, Any]) -> list[dict[str, Any]]:
    """Run nodes for ``pks`` in order, loading from the store only the ones not cached."""
    cached: dict[int, Any] = {}
    if ctx.run_nodes is not None:
        for pk in pks:
            hit = ctx.run_nodes.get(ctx.node_token, pk)
            if hit is not None:
                cached[pk] = hit
    missing = [pk for pk in pks if pk not in cached]
    if missing:
        rows = run_rows(ctx.session, missing)
        ctx.load_users([r.user_pk for r in rows])
        for row in rows:
            base = _base_run_dict(ctx, row)
            cached[row.pk] = base
            if ctx.run_nodes is not None:
                ctx.run_nodes.put(ctx.node_token, row.pk, base)
    out = []
    for pk in pks:
        if pk in cached:
            node = dict(cached[pk])
            node["project"] = project
            out.append(node)
    return out


def resolve_run_count(project: dict[str, Any], info: GraphQLResolveInfo,
                      filters: Any = None) -> int:
    ctx = _ctx(info)
    parsed = parse_json_arg(filters, "filters")
    try:
        if ctx.run_lists is not None:
            return len(ctx.run_lists.run_pks(ctx.session, project["_row"].pk, parsed, None))
        return count_runs(ctx.session, project["_row"].pk, parsed)
    except FilterError as exc:
        raise _filter_error(exc, "filters") from exc


def runs_connection(ctx: RequestContext, project: dict[str, Any], filters: Any, order: str | None,
                    first: int | None, after: str | None) -> dict[str, Any]:
    """One page of a project's runs, filtered and ordered by the query engine."""
    offset, limit = page_window(ctx, first, after)
    parsed = parse_json_arg(filters, "filters")
    try:
        if ctx.run_lists is not None:
            pks = ctx.run_lists.run_pks(ctx.session, project["_row"].pk, parsed, order or None)
            nodes = _page_runs(ctx, pks[offset:offset + limit + 1], project)
            return connection(nodes, offset, limit, lambda n: n)
        rows = select_runs(ctx.session, project["_row"].pk, parsed, order or None,
                           limit=limit + 1, offset=offset)
    except FilterError as exc:
        raise _filter_error(exc, "filters or order") from exc
    ctx.load_users([r.user_pk for r in rows[:limit]])
    return connection(rows, offset, limit, lambda r: run_dict(ctx, r, project))


def resolve_runs(project: dict[str, Any], info: GraphQLResolveInfo, filters: Any = None,
                 after: str | None = None, first: int | None = None, order: str | None = None,
                 **_: Any) -> dict[str, Any]:
    return runs_connection(_ctx(info), project, filters, order, first, after)


def resolve_run(project: dict[str, Any], info: GraphQLResolveInfo,
                name: str | None = None) -> dict[str, Any] | None:
    ctx = _ctx(info)
    run = store_runs.get_run(ctx.session, project["_row"].pk, name or "")
    if run is None or run.deleted_at is not None:
        return None
    return run_dict(ctx, run, project)


# ----------------------------------------------------------------------------- run: history


def _run(node: dict[str, Any]) -> Run:
    return node["_run"]  # type: ignore[no-any-return]


def resolve_history_keys(node: dict[str, Any], info: GraphQLResolveInfo, **_: Any) -> Any:
    run = _run(node)
    raw = run.history_keys_raw
    if raw is not None and raw.strip():
        return RawJSON(raw)  # stored by the store's own encoder: spliced into the reply as is
    session = _ctx(info).session
    last = history.last_step(session, run.pk)
    return {"keys": {k: {"count": v.get("count")} for k, v in history.keys(session, run.pk).items()},
            "lastStep": -1 if last is None else last}


def resolve_history(node: dict[str, Any], info: GraphQLResolveInfo, samples: int | None = None,
                    minStep: int | None = None, maxStep: int | None = None) -> list[str]:
    rows = history.sample_rows(_ctx(info).session, _run(node).pk,
                               samples=DEFAULT_SAMPLES if samples is None else int(samples),
                               min_step=None if minStep is None else int(minStep),
                               max_step=None if maxStep is None else int(maxStep))
    return [dumps(r) for r in rows]


def _spec_keys(keys: Any) -> list[str] | None:
    if keys is None:
        return None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise GraphQLError("sampledHistory spec keys must be a list of strings")
    return list(dict.fromkeys(keys))


def resolve_sampled_history(node: dict[str, Any], info: GraphQLResolveInfo,
                            specs: list[Any] | None = None) -> list[list[dict[str, Any]]]:
    session = _ctx(info).session
    out = []
    for raw in specs or []:
        spec = parse_json_arg(raw, "specs")
        if not isinstance(spec, dict):
            raise GraphQLError("each sampledHistory spec must be a JSON object")
        keys = _spec_keys(spec.get("keys"))
        max_step = spec.get("maxStep")
        rows = history.sample_rows(
            session, _run(node).pk, keys=keys or None,
            samples=int(spec.get("samples", DEFAULT_SAMPLES)),
            min_step=None if spec.get("minStep") is None else int(spec["minStep"]),
            max_step=None if max_step is None else int(max_step) + 1,  # spec maxStep: inclusive
        )
        if keys:
            rows = [{k: r[k] for k in keys if k in r} for r in rows]
        out.append(nonfinite_as_strings(rows))  # as W&B: wandb-core decodes these with encoding/json
    return out


def resolve_events(node: dict[str, Any], info: GraphQLResolveInfo,
                   samples: int | None = None) -> list[str]:
    rows = history.sample_rows(_ctx(info).session, _run(node).pk, stream=history.EVENTS_STREAM,
                               samples=DEFAULT_SAMPLES if samples is None else int(samples))
    return [dumps(r) for r in rows]


def resolve_parquet_history(node: dict[str, Any], info: GraphQLResolveInfo,
                            liveKeys: list[str] | None = None) -> dict[str, Any]:
    ctx = _ctx(info)
    run = _run(node)
    if (ctx.options.export_parquet and run.state in store_runs.TERMINAL_STATES
            and history.row_count(ctx.session, run.pk) > 0):
        proj = node["project"]
        return {"parquetUrls": [ctx.parquet_url(proj["entityName"], proj["name"], run.run_id)],
                "liveData": []}
    return {"parquetUrls": [], "liveData": []}


# ----------------------------------------------------------------------------- run: files


def resolve_file_count(node: dict[str, Any], info: GraphQLResolveInfo) -> int:
    return store_files.count_files(_ctx(info).session, _run(node).pk)


def resolve_files(node: dict[str, Any], info: GraphQLResolveInfo, names: list[str] | None = None,
                  after: str | None = None, first: int | None = None, pattern: str | None = None,
                  **_: Any) -> dict[str, Any]:
    ctx = _ctx(info)
    run = _run(node)
    proj = node["project"]
    offset, limit = page_window(ctx, first, after)
    names = [n for n in (names or []) if n]
    rows = store_files.list_files(ctx.session, run.pk, names=names or None, pattern=pattern,
                                  limit=limit + 1, offset=offset)

    def file_dict(row: Any) -> dict[str, Any]:
        url = ctx.run_file_url(proj["entityName"], proj["name"], run.run_id, row.name)
        out = store_files.file_node(row, url=url, direct_url=url)
        out.update({"__typename": "File", "displayName": row.name, "digest": row.md5,
                    "storagePath": None, "sizeBytes": row.size_bytes or 0})
        if out["id"] is None:
            out["id"] = f"{run.storage_id or run.run_id}:{row.name}"
        return out

    total = store_files.count_files(ctx.session, run.pk, names=names or None, pattern=pattern)
    return connection(rows, offset, limit, file_dict, total=total)


def resolve_run_user(node: dict[str, Any], _info: GraphQLResolveInfo) -> Any:
    return node.get("user")


RESOLVERS: dict[str, dict[str, Any]] = {
    "Query": {
        "viewer": resolve_viewer,
        "serverInfo": resolve_server_info,
        "models": resolve_models,
        "projects": resolve_models,
        "project": resolve_project,
        "entity": resolve_entity,
    },
    "Project": {
        "runCount": resolve_run_count,
        "runs": resolve_runs,
        "run": resolve_run,
    },
    "Run": {
        "historyKeys": resolve_history_keys,
        "history": resolve_history,
        "sampledHistory": resolve_sampled_history,
        "events": resolve_events,
        "parquetHistory": resolve_parquet_history,
        "fileCount": resolve_file_count,
        "files": resolve_files,
    },
}
