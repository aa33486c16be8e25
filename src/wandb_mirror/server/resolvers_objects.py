"""Resolvers of sweeps, reports (``allViews``) and artifacts (types, collections, memberships,
versions, files, manifests, lineage)."""
from __future__ import annotations

from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo

from ..errors import FilterError
from ..query import ARTIFACT_VERSION_COLUMNS, SWEEP_COLUMNS, compile_column_filter
from ..store import artifacts as store_artifacts
from ..store import reports as store_reports
from ..store import sweeps as store_sweeps
from ..store.models import ArtifactCollection, ArtifactType, ArtifactVersion, Project
from .nodes import RequestContext, connection, page_window, parse_json_arg, user_node
from .resolvers import run_dict, runs_connection

__all__ = ["RESOLVERS"]


def _ctx(info: GraphQLResolveInfo) -> RequestContext:
    return info.context  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- sweeps


def _sweep_dict(row: Any, project: dict[str, Any]) -> dict[str, Any]:
    node = store_sweeps.sweep_node(row)
    node["project"] = project
    node["_row"] = row
    return node


def resolve_sweep(project: dict[str, Any], info: GraphQLResolveInfo,
                  sweepName: str | None = None) -> dict[str, Any] | None:
    row = store_sweeps.get_sweep(_ctx(info).session, project["_row"].pk, sweepName or "")
    return None if row is None or row.deleted_at else _sweep_dict(row, project)


def resolve_sweeps(project: dict[str, Any], info: GraphQLResolveInfo, after: str | None = None,
                   first: int | None = None, filters: Any = None, **_: Any) -> dict[str, Any]:
    ctx = _ctx(info)
    offset, limit = page_window(ctx, first, after)
    where = _column_filter(filters, SWEEP_COLUMNS)
    rows = store_sweeps.list_sweeps(ctx.session, project["_row"].pk, where=where,
                                    limit=limit + 1, offset=offset)
    total = store_sweeps.count_sweeps(ctx.session, project["_row"].pk, where=where)
    return connection(rows, offset, limit, lambda r: _sweep_dict(r, project), total=total)


def _column_filter(filters: Any, columns: Any) -> Any:
    wanted = parse_json_arg(filters, "filters")
    if not wanted:
        return None
    try:
        return compile_column_filter(wanted, columns)
    except FilterError as exc:
        raise GraphQLError(f"invalid filters: {exc}") from exc


def resolve_total_sweeps(project: dict[str, Any], info: GraphQLResolveInfo) -> int:
    return store_sweeps.count_sweeps(_ctx(info).session, project["_row"].pk)


def resolve_sweep_runs(sweep: dict[str, Any], info: GraphQLResolveInfo, after: str | None = None,
                       first: int | None = None, order: str | None = None, filters: Any = None,
                       **_: Any) -> dict[str, Any]:
    wanted: Any = {"sweep": sweep["name"]}
    extra = parse_json_arg(filters, "filters")
    if extra:
        wanted = {"$and": [wanted, extra]}
    return runs_connection(_ctx(info), sweep["project"], wanted, order, first, after)


# ----------------------------------------------------------------------------- reports


def resolve_all_views(project: dict[str, Any], info: GraphQLResolveInfo, viewType: str | None = None,
                      viewName: str | None = None, first: int | None = None,
                      after: str | None = None) -> dict[str, Any]:
    ctx = _ctx(info)
    offset, limit = page_window(ctx, first, after)
    rows = store_reports.list_reports(ctx.session, project["_row"].pk, name=viewName,
                                      limit=limit + 1, offset=offset)

    def node(row: Any) -> dict[str, Any]:
        out = store_reports.report_node(row, ctx.user(row.user_pk))
        user = ctx.user(row.user_pk)
        if user is not None:
            out["user"] = {**(user_node(user) or {}), **out["user"]}
        out.update({"__typename": "View", "type": viewType or "runs", "project": project})
        return out

    return connection(rows, offset, limit, node)


# ----------------------------------------------------------------------------- artifacts


def _type_dict(ctx: RequestContext, row: ArtifactType, project: dict[str, Any]) -> dict[str, Any]:
    out = store_artifacts.type_node(row)
    out.update({"project": project, "_row": row})
    return out


def _collection_dict(ctx: RequestContext, row: ArtifactCollection,
                     project: dict[str, Any]) -> dict[str, Any]:
    type_row = ctx.session.get(ArtifactType, row.type_pk)
    out = store_artifacts.collection_node(row, type_row)
    out["defaultArtifactType"] = _type_dict(ctx, type_row, project)
    out.update({"project": project, "_row": row, "tags": {**out["tags"], "pageInfo": None}})
    return out


def _artifact_dict(ctx: RequestContext, row: ArtifactVersion) -> dict[str, Any]:
    coll = ctx.session.get(ArtifactCollection, row.collection_pk)
    type_row = ctx.session.get(ArtifactType, coll.type_pk)
    project = ctx.project(ctx.session.get(Project, coll.project_pk))
    coll_dict = _collection_dict(ctx, coll, project)
    aliases = [{**a, "artifactCollection": coll_dict}
               for a in store_artifacts.alias_nodes(ctx.session, row.pk)]
    out = store_artifacts.artifact_node(row, coll, type_row, aliases)
    out["artifactSequence"] = {**coll_dict, "__typename": "ArtifactSequence"}
    out["artifactType"] = _type_dict(ctx, type_row, project)
    out["digestAlgorithm"] = "MANIFEST_MD5"
    out["storageBytes"] = row.size
    out.update({"_row": row, "_collection": coll_dict})
    return out


def _membership_dict(ctx: RequestContext, row: ArtifactVersion) -> dict[str, Any]:
    art = _artifact_dict(ctx, row)
    coll = art["_collection"]
    return {"__typename": "ArtifactCollectionMembership", "id": row.upstream_id,
            "versionIndex": row.version_index, "createdAt": row.created_at,
            "aliases": art["aliases"], "artifactCollection": coll, "artifact": art, "_row": row}


def resolve_artifact_types(project: dict[str, Any], info: GraphQLResolveInfo, after: str | None = None,
                           first: int | None = None, **_: Any) -> dict[str, Any]:
    ctx = _ctx(info)
    offset, limit = page_window(ctx, first, after)
    rows = store_artifacts.list_types(ctx.session, project["_row"].pk)
    return connection(rows[offset:offset + limit + 1], offset, limit,
                      lambda r: _type_dict(ctx, r, project), total=len(rows))


def resolve_artifact_type(project: dict[str, Any], info: GraphQLResolveInfo,
                          name: str | None = None) -> dict[str, Any] | None:
    ctx = _ctx(info)
    row = store_artifacts.get_type(ctx.session, project["_row"].pk, name or "")
    return None if row is None else _type_dict(ctx, row, project)


def _collections(ctx: RequestContext, project: dict[str, Any], type_pk: int | None,
                 after: str | None, first: int | None, filters: Any) -> dict[str, Any]:
    offset, limit = page_window(ctx, first, after)
    rows = store_artifacts.list_collections(ctx.session, project["_row"].pk, type_pk=type_pk)
    wanted = parse_json_arg(filters, "filters") or {}
    if isinstance(wanted.get("name"), str):
        rows = [r for r in rows if r.name == wanted["name"]]
    return connection(rows[offset:offset + limit + 1], offset, limit,
                      lambda r: _collection_dict(ctx, r, project), total=len(rows))


def resolve_project_collections(project: dict[str, Any], info: GraphQLResolveInfo,
                                after: str | None = None, first: int | None = None,
                                filters: Any = None, **_: Any) -> dict[str, Any]:
    return _collections(_ctx(info), project, None, after, first, filters)


def resolve_type_collections(type_: dict[str, Any], info: GraphQLResolveInfo,
                             after: str | None = None, first: int | None = None,
                             filters: Any = None, **_: Any) -> dict[str, Any]:
    return _collections(_ctx(info), type_["project"], type_["_row"].pk, after, first, filters)


def resolve_project_collection(project: dict[str, Any], info: GraphQLResolveInfo,
                               name: str | None = None) -> dict[str, Any] | None:
    ctx = _ctx(info)
    row = store_artifacts.get_collection(ctx.session, project["_row"].pk, name or "")
    return None if row is None else _collection_dict(ctx, row, project)


def resolve_type_collection(type_: dict[str, Any], info: GraphQLResolveInfo,
                            name: str | None = None) -> dict[str, Any] | None:
    ctx = _ctx(info)
    row = store_artifacts.get_collection(ctx.session, type_["project"]["_row"].pk, name or "")
    if row is None or row.type_pk != type_["_row"].pk:
        return None
    return _collection_dict(ctx, row, type_["project"])


def resolve_membership_by_name(project: dict[str, Any], info: GraphQLResolveInfo,
                               name: str | None = None) -> dict[str, Any] | None:
    ctx = _ctx(info)
    row = store_artifacts.get_version(ctx.session, project["_row"].pk, name or "")
    return None if row is None or row.deleted_at else _membership_dict(ctx, row)


def resolve_project_artifact(project: dict[str, Any], info: GraphQLResolveInfo,
                             name: str | None = None) -> dict[str, Any] | None:
    ctx = _ctx(info)
    row = store_artifacts.get_version(ctx.session, project["_row"].pk, name or "")
    return None if row is None or row.deleted_at else _artifact_dict(ctx, row)


def resolve_collection_membership(coll: dict[str, Any], info: GraphQLResolveInfo,
                                  aliasName: str | None = None) -> dict[str, Any] | None:
    ctx = _ctx(info)
    row = store_artifacts.resolve_alias(ctx.session, coll["_row"].pk, aliasName)
    return None if row is None or row.deleted_at else _membership_dict(ctx, row)


def resolve_collection_memberships(coll: dict[str, Any], info: GraphQLResolveInfo,
                                   after: str | None = None, first: int | None = None,
                                   **_: Any) -> dict[str, Any]:
    ctx = _ctx(info)
    offset, limit = page_window(ctx, first, after)
    rows = store_artifacts.list_versions(ctx.session, coll["_row"].pk, descending=True)
    return connection(rows[offset:offset + limit + 1], offset, limit,
                      lambda r: _membership_dict(ctx, r), total=len(rows))


def resolve_collection_artifacts(coll: dict[str, Any], info: GraphQLResolveInfo,
                                 after: str | None = None, first: int | None = None,
                                 order: str | None = None, filters: Any = None,
                                 **_: Any) -> dict[str, Any]:
    ctx = _ctx(info)
    offset, limit = page_window(ctx, first, after)
    descending = not (order or "").lstrip().startswith("+")
    rows = store_artifacts.list_versions(
        ctx.session, coll["_row"].pk, where=_column_filter(filters, ARTIFACT_VERSION_COLUMNS),
        descending=descending)
    return connection(rows[offset:offset + limit + 1], offset, limit,
                      lambda r: _artifact_dict(ctx, r), total=len(rows),
                      edge_extra=lambda r: {"version": f"v{r.version_index}"})


def _entry_file(ctx: RequestContext, version: ArtifactVersion, entry: Any) -> dict[str, Any]:
    url = ctx.artifact_file_url(version.upstream_id, entry.path)
    return {"__typename": "File", "id": f"{version.upstream_id}:{entry.path}", "name": entry.path,
            "displayName": entry.path, "url": url, "directUrl": url,
            "sizeBytes": entry.size or 0, "storagePath": None, "mimetype": None,
            "updatedAt": version.updated_at or version.created_at, "digest": entry.digest,
            "md5": entry.digest}


def _artifact_files(ctx: RequestContext, version: ArtifactVersion, names: list[str] | None,
                    after: str | None, first: int | None) -> dict[str, Any]:
    if version.manifest_raw is None:
        raise GraphQLError(f"artifact {version.upstream_id}: its manifest is not in this mirror; "
                           "sync the artifact's manifest to list its files")
    offset, limit = page_window(ctx, first, after)
    rows = store_artifacts.list_entries(ctx.session, version.pk, names=names or None,
                                        stored_only=True)
    return connection(rows[offset:offset + limit + 1], offset, limit,
                      lambda e: _entry_file(ctx, version, e), total=len(rows))


def resolve_membership_files(member: dict[str, Any], info: GraphQLResolveInfo,
                             names: list[str] | None = None, after: str | None = None,
                             first: int | None = None, **_: Any) -> dict[str, Any]:
    return _artifact_files(_ctx(info), member["_row"], names, after, first)


def resolve_artifact_files(art: dict[str, Any], info: GraphQLResolveInfo,
                           names: list[str] | None = None, after: str | None = None,
                           first: int | None = None, **_: Any) -> dict[str, Any]:
    return _artifact_files(_ctx(info), art["_row"], names, after, first)


def resolve_artifact(_root: Any, info: GraphQLResolveInfo, id: str | None = None) -> dict[str, Any] | None:
    ctx = _ctx(info)
    row = store_artifacts.get_version_by_id(ctx.session, id or "")
    if row is None or row.deleted_at or ctx.session.get(
            ArtifactCollection, row.collection_pk).deleted_at:
        return None  # deleted upstream: not found, like a deleted run
    return _artifact_dict(ctx, row)


def resolve_current_manifest(art: dict[str, Any], info: GraphQLResolveInfo) -> dict[str, Any] | None:
    ctx = _ctx(info)
    row: ArtifactVersion = art["_row"]
    if row.manifest_raw is None:
        return None
    url = ctx.manifest_url(row.upstream_id)
    return {"id": row.upstream_id, "type": "FULL", "createdAt": row.created_at, "digest": row.digest,
            "file": {"__typename": "File", "id": f"{row.upstream_id}:manifest",
                     "name": "wandb_manifest.json", "displayName": "wandb_manifest.json",
                     "url": url, "directUrl": url,
                     "sizeBytes": len(row.manifest_raw.encode()), "mimetype": "application/json",
                     "updatedAt": row.updated_at, "md5": None, "digest": None,
                     "storagePath": None}}


def _run_artifacts(direction: str):  # type: ignore[no-untyped-def]
    def resolve(node: dict[str, Any], info: GraphQLResolveInfo, after: str | None = None,
                first: int | None = None, **_: Any) -> dict[str, Any]:
        ctx = _ctx(info)
        offset, limit = page_window(ctx, first, after)
        rows = store_artifacts.run_artifact_versions(ctx.session, node["_run"].pk, direction)
        return connection(rows[offset:offset + limit + 1], offset, limit,
                          lambda r: _artifact_dict(ctx, r), total=len(rows))
    return resolve


def _version_runs(ctx: RequestContext, version: ArtifactVersion, direction: str) -> list[dict[str, Any]]:
    out = []
    for run in store_artifacts.version_users(ctx.session, version.pk, direction):
        out.append(run_dict(ctx, run, ctx.project(ctx.session.get(Project, run.project_pk))))
    return out


def resolve_used_by(art: dict[str, Any], info: GraphQLResolveInfo, after: str | None = None,
                    first: int | None = None) -> dict[str, Any]:
    ctx = _ctx(info)
    offset, limit = page_window(ctx, first, after)
    runs = _version_runs(ctx, art["_row"], "input")
    return connection(runs[offset:offset + limit + 1], offset, limit, lambda r: r, total=len(runs))


def resolve_created_by(art: dict[str, Any], info: GraphQLResolveInfo) -> dict[str, Any] | None:
    runs = _version_runs(_ctx(info), art["_row"], "output")
    return runs[0] if runs else None


def resolve_artifact_memberships(art: dict[str, Any], info: GraphQLResolveInfo,
                                 after: str | None = None, first: int | None = None) -> dict[str, Any]:
    ctx = _ctx(info)
    member = _membership_dict(ctx, art["_row"])
    return connection([member], 0, 1, lambda m: m, total=1)


RESOLVERS: dict[str, dict[str, Any]] = {
    "Query": {"artifact": resolve_artifact},
    "Project": {
        "sweep": resolve_sweep,
        "sweeps": resolve_sweeps,
        "totalSweeps": resolve_total_sweeps,
        "allViews": resolve_all_views,
        "artifactTypes": resolve_artifact_types,
        "artifactType": resolve_artifact_type,
        "artifactCollections": resolve_project_collections,
        "artifactCollection": resolve_project_collection,
        "artifactCollectionMembership": resolve_membership_by_name,
        "artifact": resolve_project_artifact,
    },
    "Run": {
        "outputArtifacts": _run_artifacts("output"),
        "inputArtifacts": _run_artifacts("input"),
    },
    "Sweep": {"runs": resolve_sweep_runs},
    "ArtifactType": {
        "artifactCollections": resolve_type_collections,
        "artifactSequences": resolve_type_collections,
        "artifactCollection": resolve_type_collection,
        "artifactSequence": resolve_type_collection,
    },
    "ArtifactSequence": {
        "artifacts": resolve_collection_artifacts,
        "artifactMembership": resolve_collection_membership,
        "artifactMemberships": resolve_collection_memberships,
    },
    "ArtifactPortfolio": {
        "artifacts": resolve_collection_artifacts,
        "artifactMembership": resolve_collection_membership,
        "artifactMemberships": resolve_collection_memberships,
    },
    "ArtifactCollectionMembership": {"files": resolve_membership_files},
    "Artifact": {
        "files": resolve_artifact_files,
        "currentManifest": resolve_current_manifest,
        "usedBy": resolve_used_by,
        "createdBy": resolve_created_by,
        "artifactMemberships": resolve_artifact_memberships,
    },
}
