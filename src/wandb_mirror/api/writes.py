"""Write methods: passed through to the W&B server as its GraphQL mutations.

Offline, every write raises :class:`~wandb_mirror.errors.OfflineError` saying that the write
needs a connection. Online, the mutation the upstream client sends is sent; a server that does
not implement it (``wandb-mirror serve`` without ``--writable``) gives
:class:`WriteUnsupportedError`. After a successful write the change is recorded in the mirror
at once (the run upstream answered with, a deleted run or file, the uploaded bytes, an
artifact's new aliases...), so reads of this or any Api on the store see it, and the project
is marked stale, so this Api's next read of it refreshes from upstream as well.
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from ..errors import GraphQLError, RemoteError, StoreError
from ..remote.queries import RUN_FIELDS
from ..store import artifacts as store_artifacts
from ..store import files as store_files
from ..store import runs as store_runs
from ..store.engine import session_scope
from ..store.models import Project as ProjectRow
from ..store.models import Run as RunRow
from .base import WriteUnsupportedError, offline_write_error

if TYPE_CHECKING:
    from .api import Api
    from .artifacts import Artifact
    from .files import File
    from .runs import Run

__all__ = ["delete_artifact", "delete_files", "delete_run", "execute_write", "log_artifact",
           "update_artifact", "upload_file", "upsert_run", "upsert_summary", "use_artifact"]

log = logging.getLogger(__name__)

# Both ask for the run's fields back (upstream's run.update() asks for its RunFragment), so
# the mirror stores the run exactly as upstream now has it.
UPSERT_RUN = """
mutation UpsertBucket($id: String!, $description: String, $display_name: String,
                      $notes: String, $tags: [String!], $config: JSONString!,
                      $groupName: String, $jobType: String) {
  upsertBucket(input: {id: $id, description: $description, displayName: $display_name,
                       notes: $notes, tags: $tags, config: $config, groupName: $groupName,
                       jobType: $jobType}) {
    bucket { %s }
  }
}
""" % RUN_FIELDS

UPSERT_SUMMARY = """
mutation UpsertBucket($id: String, $summaryMetrics: JSONString) {
  upsertBucket(input: {id: $id, summaryMetrics: $summaryMetrics}) { bucket { %s } }
}
""" % RUN_FIELDS

DELETE_RUN = """
mutation DeleteRun($id: ID!, $deleteArtifacts: Boolean) {
  deleteRun(input: {id: $id, deleteArtifacts: $deleteArtifacts}) { clientMutationId }
}
"""

DELETE_FILES = """
mutation deleteFiles($files: [ID!]!, $projectId: Int) {
  deleteFiles(input: {files: $files, projectId: $projectId}) { success }
}
"""

CREATE_RUN_FILES = """
mutation CreateRunFiles($entity: String!, $project: String!, $run: String!, $files: [String!]!) {
  createRunFiles(input: {entityName: $entity, projectName: $project, runName: $run,
                         files: $files}) {
    runID
    uploadHeaders
    files { name uploadUrl }
  }
}
"""

USE_ARTIFACT = """
mutation UseArtifact($entityName: String!, $projectName: String!, $runName: String!,
                     $artifactID: ID!, $usedAs: String) {
  useArtifact(input: {entityName: $entityName, projectName: $projectName, runName: $runName,
                      artifactID: $artifactID, usedAs: $usedAs}) {
    artifact { id }
  }
}
"""

LINK_OUTPUT_ARTIFACT = """
mutation AddAliases($artifactID: ID!, $aliases: [ArtifactCollectionAliasInput!]!) {
  addAliases(input: {artifactID: $artifactID, aliases: $aliases}) { success }
}
"""

UPDATE_ARTIFACT = """
mutation UpdateArtifact($artifactID: ID!, $description: String, $metadata: JSONString,
                        $aliases: [ArtifactAliasInput!]) {
  updateArtifact(input: {artifactID: $artifactID, description: $description,
                         metadata: $metadata, aliases: $aliases}) {
    artifact { id }
  }
}
"""

DELETE_ARTIFACT = """
mutation DeleteArtifact($artifactID: ID!, $deleteAliases: Boolean) {
  deleteArtifact(input: {artifactID: $artifactID, deleteAliases: $deleteAliases}) {
    artifact { id }
  }
}
"""

# How GraphQL servers say "no such mutation": graphql-core's answers for a schema without a
# Mutation type (wandb-mirror serve without --writable) or without this field.
_UNSUPPORTED_HINTS = ("cannot query field", "not configured for mutations",
                      "mutation operation is not supported", "unknown type")

Apply = Callable[[Session, dict[str, Any]], None]


def execute_write(api: Api, what: str, document: str, variables: Mapping[str, Any],
                  entity: str, project: str, apply: Apply | None = None) -> dict[str, Any]:
    """Send a mutation; on success record it in the mirror and mark the project stale.

    ``apply(session, data)`` records the change in the store (in one transaction); if that
    fails, the write upstream still stands and the project's next read refreshes it.

    Raises:
        OfflineError: the Api is offline.
        WriteUnsupportedError: the server does not implement the mutation.
        RemoteError: any other failure.
    """
    if api._offline:
        raise offline_write_error(what, api)
    client = api._client()
    try:
        data = client.execute(document, dict(variables))
    except GraphQLError as exc:
        text = str(exc).lower()
        if any(h in text for h in _UNSUPPORTED_HINTS):
            raise WriteUnsupportedError(
                f"{what}: {api._settings.base_url} does not support this write ({exc}); "
                "wandb-mirror serve is read-only unless started with --writable, or point the "
                "Api at the W&B server itself",
                url=exc.url) from exc
        raise
    except RemoteError as exc:
        if exc.status in (400, 404, 405, 501):
            raise WriteUnsupportedError(
                f"{what}: {api._settings.base_url} does not support this write ({exc})",
                status=exc.status, url=exc.url) from exc
        raise
    if apply is not None:
        try:
            with session_scope(api._engine, f"recording {what} in the mirror") as s:
                apply(s, data)
        except StoreError as exc:
            log.warning("%s succeeded upstream but the mirror could not record it (%s); the "
                        "next read of %s/%s refreshes it", what, exc, entity, project)
    api._freshness.mark_stale(entity, project)
    return data


def _stored_run(s: Session, run: Run) -> RunRow | None:
    return s.get(RunRow, run._pk)


def _record_bucket(run: Run) -> Apply:
    """Store the run node an ``upsertBucket`` answered with."""
    def apply(s: Session, data: dict[str, Any]) -> None:
        bucket = (data.get("upsertBucket") or {}).get("bucket") or {}
        if bucket.get("name") and _stored_run(s, run) is not None:
            store_runs.upsert_runs(s, s.get(ProjectRow, run._project_pk), [bucket])
    return apply


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, Mapping):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def upsert_run(run: Run) -> None:
    """``run.update()``: tags, notes, description, display name, group, job type, config."""
    def field(name: str) -> Any:
        # `run.tags = [...]` sets an instance attribute, `run.tags.append(...)` edits _attrs:
        # both count, as upstream reads `self.tags`.
        return getattr(run, name, None)

    execute_write(run._api, f"run.update() of {'/'.join(run.path)}", UPSERT_RUN, {
        "id": run.storage_id, "tags": field("tags"), "description": field("description"),
        "notes": field("notes"), "display_name": field("display_name"),
        "config": run.json_config, "groupName": field("group"), "jobType": field("job_type"),
    }, run.entity, run.project, _record_bucket(run))


def upsert_summary(run: Run, summary: Mapping[str, Any]) -> None:
    """``run.summary.update()``: the whole summary as JSON."""
    execute_write(run._api, f"summary update of {'/'.join(run.path)}", UPSERT_SUMMARY, {
        "id": run.storage_id, "summaryMetrics": json.dumps(_json_safe(dict(summary))),
    }, run.entity, run.project, _record_bucket(run))


def delete_run(run: Run, delete_artifacts: bool) -> None:
    """``run.delete()``: the run is marked deleted in the mirror (with ``delete_artifacts``,
    the artifact versions it logged too)."""
    def apply(s: Session, _data: dict[str, Any]) -> None:
        row = _stored_run(s, run)
        if row is None:
            return
        stamp = store_runs.now_iso()
        if delete_artifacts:
            for version in store_artifacts.run_artifact_versions(s, row.pk, "output"):
                store_artifacts.mark_version_deleted(s, version, stamp)
        store_runs.mark_run_deleted(s, row, stamp)

    execute_write(run._api, f"run.delete() of {'/'.join(run.path)}", DELETE_RUN,
                  {"id": run.storage_id, "deleteArtifacts": delete_artifacts},
                  run.entity, run.project, apply)


def delete_files(run: Run, files: Sequence[File]) -> None:
    """``file.delete()``: the files leave the mirror too (their cached bytes stay)."""
    def apply(s: Session, _data: dict[str, Any]) -> None:
        store_files.delete_files(s, run._pk, [f.name for f in files])

    execute_write(run._api, f"file.delete() in {'/'.join(run.path)}", DELETE_FILES,
                  {"files": [f._attrs.get("id") for f in files],
                   "projectId": run._project_internal_id}, run.entity, run.project, apply)


def upload_file(run: Run, path: str, root: str = ".") -> File:
    """``run.upload_file()``: ask for an upload URL, PUT the bytes there, record the file
    (metadata and bytes) in the mirror and return it.

    Raises:
        ValueError: ``path`` is not under ``root``.
        WriteUnsupportedError: the server gave no upload URL.
    """
    import os

    from .files import File, file_attrs

    root_abs, file_abs = os.path.abspath(root), os.path.abspath(path)
    if not file_abs.startswith(root_abs + os.sep):
        raise ValueError("Path must be within root")
    name = os.path.relpath(file_abs, root_abs).replace(os.sep, "/")
    what = f"run.upload_file({name!r}) to {'/'.join(run.path)}"
    with open(file_abs, "rb") as fh:
        body = fh.read()
    data = execute_write(run._api, what, CREATE_RUN_FILES, {
        "entity": run.entity, "project": run.project, "run": run.id, "files": [name]},
        run.entity, run.project)
    answer = data.get("createRunFiles") or {}
    files = answer.get("files") or []
    url = files[0].get("uploadUrl") if files else None
    if not url:
        raise WriteUnsupportedError(f"{what}: the server gave no upload URL")
    if url.startswith("/"):  # relative to the server, as upstream allows
        url = run._api._settings.base_url.rstrip("/") + url
    headers = dict(h.split(":", 1) for h in answer.get("uploadHeaders") or [] if ":" in h)
    run._api._client().transport.put_bytes(url, body, {k.strip(): v.strip()
                                                       for k, v in headers.items()})
    with session_scope(run._api._engine, f"recording {what} in the mirror") as s:
        row = _stored_run(s, run)
        if row is None:
            raise StoreError(f"{what}: run {'/'.join(run.path)} is no longer in the store")
        stored = store_files.store_file(s, row, name, body)
        attrs = file_attrs(stored)
    return File(run, attrs)


def use_artifact(run: Run, artifact: Artifact, use_as: str | None) -> Artifact:
    """``run.use_artifact()``: the run gets the artifact as an input in the mirror too."""
    def apply(s: Session, _data: dict[str, Any]) -> None:
        row, version = _stored_run(s, run), store_artifacts.get_version_by_id(s, artifact.id)
        if row is not None and version is not None:
            store_artifacts.link_run_artifact(s, row, version, "input")

    execute_write(run._api, f"run.use_artifact({artifact.name!r})", USE_ARTIFACT, {
        "entityName": run.entity, "projectName": run.project, "runName": run.id,
        "artifactID": artifact.id, "usedAs": use_as}, run.entity, run.project, apply)
    return artifact


def log_artifact(run: Run, artifact: Artifact, aliases: Sequence[str] | None,
                 tags: Sequence[str] | None) -> Artifact:
    """``run.log_artifact()`` of an existing artifact: add aliases to it upstream."""
    names = list(aliases or ["latest"])

    def apply(s: Session, _data: dict[str, Any]) -> None:
        version = store_artifacts.get_version_by_id(s, artifact.id)
        if version is not None:
            store_artifacts.add_aliases(s, version, names)

    execute_write(run._api, f"run.log_artifact({artifact.name!r})", LINK_OUTPUT_ARTIFACT, {
        "artifactID": artifact.id,
        "aliases": [{"alias": a, "artifactCollectionName": artifact.collection_name,
                     "entityName": run.entity, "projectName": run.project}
                    for a in names]}, run.entity, run.project, apply)
    return artifact


def update_artifact(artifact: Artifact) -> None:
    """``artifact.save()``: description, metadata and aliases."""
    metadata = json.dumps(_json_safe(artifact.metadata))
    aliases = list(artifact.aliases)

    def apply(s: Session, _data: dict[str, Any]) -> None:
        version = store_artifacts.get_version_by_id(s, artifact.id)
        if version is not None:
            version.description = artifact.description
            version.metadata_raw = metadata
            store_artifacts.replace_aliases(s, version, aliases)

    execute_write(artifact._api, f"artifact.save() of {artifact.qualified_name}",
                  UPDATE_ARTIFACT, {
                      "artifactID": artifact.id, "description": artifact.description,
                      "metadata": metadata,
                      "aliases": [{"alias": a, "artifactCollectionName":
                                   artifact.collection_name} for a in aliases]},
                  artifact.entity, artifact.project, apply)


def delete_artifact(artifact: Artifact, delete_aliases: bool) -> None:
    """``artifact.delete()``: the version is marked deleted in the mirror too."""
    def apply(s: Session, _data: dict[str, Any]) -> None:
        version = store_artifacts.get_version_by_id(s, artifact.id)
        if version is not None:
            store_artifacts.mark_version_deleted(s, version, store_runs.now_iso())

    execute_write(artifact._api, f"artifact.delete() of {artifact.qualified_name}",
                  DELETE_ARTIFACT, {"artifactID": artifact.id, "deleteAliases": delete_aliases},
                  artifact.entity, artifact.project, apply)
