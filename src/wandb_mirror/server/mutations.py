"""The write mutations of ``wandb-mirror serve --writable``, applied to the served store.

Only a server started with ``ServeOptions(writable=True)`` has these (the SDL is
``mutations.graphql``); a read-only server has no ``Mutation`` type at all.

Each mutation changes the store the way upstream changes its data, so a mirror syncing from
this server sees the change on its next incremental sync:

- a run edited (``upsertBucket``), given a file (an upload) or an input artifact
  (``useArtifact``) gets ``updatedAt`` and ``heartbeatAt`` set to now (the incremental run
  listing asks for runs whose ``heartbeatAt`` moved, and a moved heartbeat makes the sync
  re-read the run's files and artifacts);
- a deleted run is marked deleted (hidden, as a sync marks runs gone upstream);
- an artifact collection whose versions or aliases changed gets ``updatedAt`` set to now, so
  a sync pages its versions again; a deleted version is marked deleted.

Writes go through the ``store`` write functions in the request's session, committed before
the answer is built.
"""
from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..store import artifacts as store_artifacts
from ..store import files as store_files
from ..store import runs as store_runs
from ..store import values
from ..store.engine import session_scope, translate_db_error
from ..store.models import ArtifactCollection, Project, Run, RunFile
from ..store.values import parse_timestamp
from .nodes import RequestContext, parse_json_arg
from .resolvers import run_dict
from .resolvers_objects import resolve_artifact

__all__ = ["RESOLVERS", "store_upload"]


def _ctx(info: GraphQLResolveInfo) -> RequestContext:
    return info.context  # type: ignore[no-any-return]


@contextmanager
def _writing(ctx: RequestContext, what: str) -> Iterator[Session]:
    """The request's session for a write: committed on success, rolled back on error (store
    errors become GraphQL errors naming the mutation)."""
    session = ctx.session
    try:
        yield session
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        raise GraphQLError(str(translate_db_error(exc, what))) from exc
    except BaseException:
        session.rollback()
        raise


def _fresh(ctx: RequestContext) -> RequestContext:
    """The context without the cross-request node caches (they hold pre-write nodes)."""
    return replace(ctx, run_nodes=None, node_token=None, users={}, user_nodes={}, projects={})


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _later(current: str | None, stamp: str) -> str:
    """``stamp``, unless ``current`` is already later (a heartbeat never moves back)."""
    now, have = parse_timestamp(stamp), parse_timestamp(current)
    return current if have is not None and now is not None and have > now else stamp  # type: ignore[return-value]


def _edit_run(session: Session, run: Run, fields: Mapping[str, Any]) -> Run:
    """Apply GraphQL run ``fields`` to ``run`` and move ``updatedAt``/``heartbeatAt`` to now
    (through ``upsert_runs``, so derived columns and the value index follow)."""
    stamp = store_runs.now_iso()
    node = {"name": run.run_id, **fields, "updatedAt": stamp,
            "heartbeatAt": _later(run.heartbeat_at, stamp)}
    deleted = run.deleted_at
    (row,) = store_runs.upsert_runs(session, session.get(Project, run.project_pk), [node])
    row.deleted_at = deleted  # an edit does not revive a deleted run
    return row


def _run_by_id(session: Session, storage_id: Any, what: str) -> Run:
    run = store_runs.get_run_by_storage_id(session, str(storage_id or ""))
    if run is None or run.deleted_at is not None:
        raise GraphQLError(f"{what}: no run with id {storage_id!r} on this server")
    return run


def _run_by_name(session: Session, entity: Any, project: Any, name: Any, what: str
                 ) -> tuple[Project, Run]:
    proj = store_runs.get_project(session, str(entity or ""), str(project or ""))
    run = store_runs.get_run(session, proj.pk, str(name or "")) if proj else None
    if proj is None or run is None or run.deleted_at is not None:
        raise GraphQLError(f"{what}: no run {entity}/{project}/{name} on this server")
    return proj, run


def _version(session: Session, artifact_id: Any, what: str) -> Any:
    row = store_artifacts.get_version_by_id(session, str(artifact_id or ""))
    if row is None or row.deleted_at is not None:
        raise GraphQLError(f"{what}: no artifact with id {artifact_id!r} on this server")
    return row


def _touch_collection(session: Session, collection_pk: int) -> ArtifactCollection:
    coll = session.get(ArtifactCollection, collection_pk)
    coll.updated_at = store_runs.now_iso()
    return coll


# ----------------------------------------------------------------------------- runs

# UpsertBucketInput field -> GraphQL Run field (as upsert_runs takes it).
_RUN_INPUT = {"description": "description", "displayName": "displayName", "notes": "notes",
              "tags": "tags", "config": "config", "summaryMetrics": "summaryMetrics",
              "groupName": "group", "jobType": "jobType", "state": "state"}


def resolve_upsert_bucket(_root: Any, info: GraphQLResolveInfo,
                          input: Mapping[str, Any] | None = None) -> dict[str, Any]:  # noqa: A002
    """``upsertBucket``: edit a run by ``id``, or create one by ``name`` in
    ``entityName``/``modelName``; only the fields given change."""
    ctx = _ctx(info)
    data = dict(input or {})
    fields: dict[str, Any] = {}
    for key, field in _RUN_INPUT.items():
        if key in data:
            value = data[key]
            if key in ("config", "summaryMetrics") and value is not None:
                parse_json_arg(value, key)  # refuse text that is not JSON
                if not isinstance(value, str):
                    value = values.dumps(value)
            fields[field] = value
    inserted = False
    with _writing(ctx, "upsertBucket") as s:
        if data.get("id"):
            run = _run_by_id(s, data["id"], "upsertBucket")
        else:
            entity, project, name = data.get("entityName"), data.get("modelName"), data.get("name")
            proj = store_runs.get_project(s, str(entity or ""), str(project or ""))
            if proj is None or not name:
                raise GraphQLError("upsertBucket: give the run's id, or name, modelName and "
                                   f"entityName of an existing project (got {entity}/{project})")
            run = store_runs.get_run(s, proj.pk, str(name))
            if run is None:
                inserted = True
                stamp = store_runs.now_iso()
                fields = {"id": _b64(f"Run:v1:{name}:{project}:{entity}"), "createdAt": stamp,
                          "state": "running", "projectId": proj.internal_id or str(proj.pk),
                          "tags": [], "config": "{}", "summaryMetrics": "{}", **fields}
                (run,) = store_runs.upsert_runs(s, proj, [{"name": str(name), **fields}])
        run = _edit_run(s, run, fields)
        pk = run.pk
    fresh = _fresh(ctx)
    row = ctx.session.get(Run, pk)
    return {"bucket": run_dict(fresh, row, fresh.project(ctx.session.get(Project, row.project_pk))),
            "inserted": inserted, "clientMutationId": data.get("clientMutationId")}


def resolve_delete_run(_root: Any, info: GraphQLResolveInfo,
                       input: Mapping[str, Any] | None = None) -> dict[str, Any]:  # noqa: A002
    """``deleteRun``: mark the run deleted (and, with ``deleteArtifacts``, what it logged)."""
    ctx = _ctx(info)
    data = dict(input or {})
    with _writing(ctx, "deleteRun") as s:
        run = _run_by_id(s, data.get("id"), "deleteRun")
        stamp = store_runs.now_iso()
        if data.get("deleteArtifacts"):
            for version in store_artifacts.run_artifact_versions(s, run.pk, "output"):
                store_artifacts.mark_version_deleted(s, version, stamp)
                _touch_collection(s, version.collection_pk)
        run = _edit_run(s, run, {})
        store_runs.mark_run_deleted(s, run, stamp)
    return {"clientMutationId": data.get("clientMutationId")}


def _file_rows(session: Session, file_id: str) -> list[RunFile]:
    """Files by id: the stored upstream id, else ours (``<run storage id>:<name>``)."""
    rows = store_files.files_by_id(session, file_id)
    if rows:
        return rows
    owner, _, name = file_id.partition(":")
    run = store_runs.get_run_by_storage_id(session, owner)
    row = store_files.get_file(session, run.pk, name) if run is not None and name else None
    return [row] if row is not None else []


def resolve_delete_files(_root: Any, info: GraphQLResolveInfo,
                         input: Mapping[str, Any] | None = None) -> dict[str, Any]:  # noqa: A002
    """``deleteFiles``: remove run files by id (``projectId``, when given, must match)."""
    ctx = _ctx(info)
    data = dict(input or {})
    with _writing(ctx, "deleteFiles") as s:
        by_run: dict[int, list[str]] = {}
        for file_id in data.get("files") or []:
            rows = _file_rows(s, str(file_id))
            if not rows:
                raise GraphQLError(f"deleteFiles: no file with id {file_id!r} on this server")
            for row in rows:
                by_run.setdefault(row.run_pk, []).append(row.name)
        for run_pk, names in by_run.items():
            run = s.get(Run, run_pk)
            project_id = data.get("projectId")
            if project_id is not None and str(project_id) != str(run.project_internal_id):
                proj = s.get(Project, run.project_pk)
                if str(project_id) not in (str(proj.internal_id), str(proj.pk)):
                    raise GraphQLError(f"deleteFiles: file of run {run.run_id} is not in "
                                       f"project {project_id}")
            store_files.delete_files(s, run_pk, names)
            _edit_run(s, run, {})
    return {"success": True, "clientMutationId": data.get("clientMutationId")}


def resolve_create_run_files(_root: Any, info: GraphQLResolveInfo,
                             input: Mapping[str, Any] | None = None) -> dict[str, Any]:  # noqa: A002
    """``createRunFiles``: upload URLs (``PUT`` the bytes there) for files of an existing run."""
    ctx = _ctx(info)
    data = dict(input or {})
    entity, project, name = data.get("entityName"), data.get("projectName"), data.get("runName")
    _, run = _run_by_name(ctx.session, entity, project, name, "createRunFiles")
    files = [{"name": f, "uploadUrl": ctx.upload_url(str(entity), str(project), run.run_id, f)}
             for f in data.get("files") or []]
    return {"runID": run.storage_id, "uploadHeaders": [], "files": files,
            "clientMutationId": data.get("clientMutationId")}


def store_upload(engine: Engine, entity: str, project: str, run_id: str, name: str,
                 data: bytes) -> str | None:
    """Store the bytes ``PUT`` to an upload URL as the run's file; None, or what is wrong.

    Raises:
        StoreError: the store refused the write.
    """
    if not name or name.startswith("/") or ".." in name.split("/"):
        return f"bad file name {name!r}"
    with session_scope(engine, f"storing upload {entity}/{project}/{run_id}/{name}") as s:
        proj = store_runs.get_project(s, entity, project)
        run = store_runs.get_run(s, proj.pk, run_id) if proj else None
        if run is None or run.deleted_at is not None:
            return f"no run {entity}/{project}/{run_id} on this server"
        store_files.store_file(s, run, name, data,
                               fields={"id": f"{run.storage_id or run.run_id}:{name}"})
        _edit_run(s, run, {})
    return None


# ----------------------------------------------------------------------------- artifacts


def resolve_use_artifact(_root: Any, info: GraphQLResolveInfo,
                         input: Mapping[str, Any] | None = None) -> dict[str, Any]:  # noqa: A002
    """``useArtifact``: record the artifact as an input of the run."""
    ctx = _ctx(info)
    data = dict(input or {})
    with _writing(ctx, "useArtifact") as s:
        _, run = _run_by_name(s, data.get("entityName"), data.get("projectName"),
                              data.get("runName"), "useArtifact")
        version = _version(s, data.get("artifactID"), "useArtifact")
        store_artifacts.link_run_artifact(s, run, version, "input")
        _edit_run(s, run, {})
    return {"artifact": resolve_artifact(None, info, id=str(data.get("artifactID"))),
            "clientMutationId": data.get("clientMutationId")}


def _own_aliases(what: str, coll: ArtifactCollection,
                 aliases: Sequence[Mapping[str, Any]]) -> list[str]:
    out = []
    for a in aliases:
        name = a.get("artifactCollectionName")
        if name not in (None, coll.name):
            raise GraphQLError(f"{what}: wandb-mirror serve only sets aliases in the artifact's "
                               f"own collection ({coll.name!r}), not in {name!r}")
        if not a.get("alias"):
            raise GraphQLError(f"{what}: an alias needs a name")
        out.append(str(a["alias"]))
    return out


def resolve_add_aliases(_root: Any, info: GraphQLResolveInfo,
                        input: Mapping[str, Any] | None = None) -> dict[str, Any]:  # noqa: A002
    """``addAliases``: give the artifact more aliases in its own collection."""
    ctx = _ctx(info)
    data = dict(input or {})
    with _writing(ctx, "addAliases") as s:
        version = _version(s, data.get("artifactID"), "addAliases")
        coll = _touch_collection(s, version.collection_pk)
        store_artifacts.add_aliases(s, version,
                                    _own_aliases("addAliases", coll, data.get("aliases") or []))
        version.updated_at = coll.updated_at
    return {"success": True, "clientMutationId": data.get("clientMutationId")}


def resolve_update_artifact(_root: Any, info: GraphQLResolveInfo,
                            input: Mapping[str, Any] | None = None) -> dict[str, Any]:  # noqa: A002
    """``updateArtifact``: description, metadata, TTL, and (when given) exactly these aliases."""
    ctx = _ctx(info)
    data = dict(input or {})
    with _writing(ctx, "updateArtifact") as s:
        version = _version(s, data.get("artifactID"), "updateArtifact")
        coll = _touch_collection(s, version.collection_pk)
        if "description" in data:
            version.description = data["description"]
        if "metadata" in data:
            meta = data["metadata"]
            parse_json_arg(meta, "metadata")
            version.metadata_raw = (meta if isinstance(meta, str) or meta is None
                                    else values.dumps(meta))
        if data.get("ttlDurationSeconds") is not None:
            version.ttl_duration_seconds = int(data["ttlDurationSeconds"])
            version.ttl_is_inherited = False
        if data.get("aliases") is not None:
            names = _own_aliases("updateArtifact", coll, data["aliases"])
            store_artifacts.replace_aliases(s, version, names)
        version.updated_at = coll.updated_at
    return {"artifact": resolve_artifact(None, info, id=str(data.get("artifactID"))),
            "clientMutationId": data.get("clientMutationId")}


def resolve_delete_artifact(_root: Any, info: GraphQLResolveInfo,
                            input: Mapping[str, Any] | None = None) -> dict[str, Any]:  # noqa: A002
    """``deleteArtifact``: mark the version deleted; one with aliases needs ``deleteAliases``."""
    ctx = _ctx(info)
    data = dict(input or {})
    with _writing(ctx, "deleteArtifact") as s:
        version = _version(s, data.get("artifactID"), "deleteArtifact")
        aliases = [a["alias"] for a in store_artifacts.alias_nodes(s, version.pk)
                   if not store_artifacts.VERSION_ALIAS.match(a["alias"])]
        if aliases and not data.get("deleteAliases"):
            raise GraphQLError(f"deleteArtifact: the artifact has aliases {aliases}; pass "
                               "deleteAliases (artifact.delete(delete_aliases=True))")
        _touch_collection(s, version.collection_pk)
        store_artifacts.mark_version_deleted(s, version, store_runs.now_iso())
        node = {"__typename": "Artifact", "id": version.upstream_id, "_row": version}
    return {"artifact": node, "clientMutationId": data.get("clientMutationId")}


RESOLVERS: dict[str, dict[str, Any]] = {
    "Mutation": {
        "upsertBucket": resolve_upsert_bucket,
        "deleteRun": resolve_delete_run,
        "deleteFiles": resolve_delete_files,
        "createRunFiles": resolve_create_run_files,
        "useArtifact": resolve_use_artifact,
        "addAliases": resolve_add_aliases,
        "updateArtifact": resolve_update_artifact,
        "deleteArtifact": resolve_delete_artifact,
    },
}
