"""Write methods: passed through to the W&B server as its GraphQL mutations.

Offline, every write raises :class:`~wandb_mirror.errors.OfflineError` saying that the write
needs a connection. Online, the mutation the upstream client sends is sent; a server that does
not implement it (``wandb-mirror serve`` is read-only) gives :class:`WriteUnsupportedError`.
After a successful write the project is marked stale, so the next read refreshes the mirror.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import GraphQLError, RemoteError
from .base import WriteUnsupportedError, offline_write_error

if TYPE_CHECKING:
    from .api import Api
    from .artifacts import Artifact
    from .files import File
    from .runs import Run

__all__ = ["delete_artifact", "delete_files", "delete_run", "execute_write", "log_artifact",
           "update_artifact", "upload_file", "upsert_run", "upsert_summary", "use_artifact"]

UPSERT_RUN = """
mutation UpsertBucket($id: String!, $description: String, $display_name: String,
                      $notes: String, $tags: [String!], $config: JSONString!,
                      $groupName: String, $jobType: String) {
  upsertBucket(input: {id: $id, description: $description, displayName: $display_name,
                       notes: $notes, tags: $tags, config: $config, groupName: $groupName,
                       jobType: $jobType}) {
    bucket { id }
  }
}
"""

UPSERT_SUMMARY = """
mutation UpsertBucket($id: String, $summaryMetrics: JSONString) {
  upsertBucket(input: {id: $id, summaryMetrics: $summaryMetrics}) { bucket { id } }
}
"""

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

_UNSUPPORTED_HINTS = ("cannot query field", "schema is not configured for mutations",
                      "unknown type", "mutation", "not supported")


def execute_write(api: Api, what: str, document: str, variables: Mapping[str, Any],
                  entity: str, project: str) -> dict[str, Any]:
    """Send a mutation; mark the project stale on success.

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
                "wandb-mirror serve is read-only, point the Api at the W&B server itself",
                url=exc.url) from exc
        raise
    except RemoteError as exc:
        if exc.status in (400, 404, 405, 501):
            raise WriteUnsupportedError(
                f"{what}: {api._settings.base_url} does not support this write ({exc})",
                status=exc.status, url=exc.url) from exc
        raise
    api._freshness.mark_stale(entity, project)
    return data


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
    }, run.entity, run.project)


def upsert_summary(run: Run, summary: Mapping[str, Any]) -> None:
    """``run.summary.update()``: the whole summary as JSON."""
    execute_write(run._api, f"summary update of {'/'.join(run.path)}", UPSERT_SUMMARY, {
        "id": run.storage_id, "summaryMetrics": json.dumps(_json_safe(dict(summary))),
    }, run.entity, run.project)


def delete_run(run: Run, delete_artifacts: bool) -> None:
    """``run.delete()``."""
    execute_write(run._api, f"run.delete() of {'/'.join(run.path)}", DELETE_RUN,
                  {"id": run.storage_id, "deleteArtifacts": delete_artifacts},
                  run.entity, run.project)


def delete_files(run: Run, files: Sequence[File]) -> None:
    """``file.delete()``."""
    execute_write(run._api, f"file.delete() in {'/'.join(run.path)}", DELETE_FILES,
                  {"files": [f._attrs.get("id") for f in files],
                   "projectId": run._project_internal_id}, run.entity, run.project)


def upload_file(run: Run, path: str, root: str = ".") -> File:
    """``run.upload_file()``: ask for an upload URL, PUT the bytes, return the new File.

    Raises:
        ValueError: ``path`` is not under ``root``.
    """
    import os

    from .files import File

    root_abs, file_abs = os.path.abspath(root), os.path.abspath(path)
    if not file_abs.startswith(root_abs + os.sep):
        raise ValueError("Path must be within root")
    name = os.path.relpath(file_abs, root_abs)
    data = execute_write(run._api, f"run.upload_file({name!r})", CREATE_RUN_FILES, {
        "entity": run.entity, "project": run.project, "run": run.id, "files": [name]},
        run.entity, run.project)
    files = ((data.get("createRunFiles") or {}).get("files")) or []
    url = files[0].get("uploadUrl") if files else None
    if not url:
        raise WriteUnsupportedError(f"run.upload_file({name!r}): the server gave no upload URL")
    with open(file_abs, "rb") as fh:
        body = fh.read()
    transport = run._api._client().transport
    try:
        transport.request("PUT", url, data=body)  # type: ignore[call-arg]
    except TypeError as exc:  # the transport cannot send raw bodies yet
        raise WriteUnsupportedError(
            f"run.upload_file({name!r}): uploading bytes needs remote.Transport.request(data=...)"
            ", which this version lacks; use wandb.Api() for uploads") from exc
    return File(run, {"name": name, "sizeBytes": len(body), "url": url, "md5": None})


def use_artifact(run: Run, artifact: Artifact, use_as: str | None) -> Artifact:
    """``run.use_artifact()``."""
    execute_write(run._api, f"run.use_artifact({artifact.name!r})", USE_ARTIFACT, {
        "entityName": run.entity, "projectName": run.project, "runName": run.id,
        "artifactID": artifact.id, "usedAs": use_as}, run.entity, run.project)
    return artifact


def log_artifact(run: Run, artifact: Artifact, aliases: Sequence[str] | None,
                 tags: Sequence[str] | None) -> Artifact:
    """``run.log_artifact()`` of an existing artifact: add aliases to it upstream."""
    execute_write(run._api, f"run.log_artifact({artifact.name!r})", LINK_OUTPUT_ARTIFACT, {
        "artifactID": artifact.id,
        "aliases": [{"alias": a, "artifactCollectionName": artifact.collection_name,
                     "entityName": run.entity, "projectName": run.project}
                    for a in (aliases or ["latest"])]}, run.entity, run.project)
    return artifact


def update_artifact(artifact: Artifact) -> None:
    """``artifact.save()``: description, metadata and aliases."""
    execute_write(artifact._api, f"artifact.save() of {artifact.qualified_name}",
                  UPDATE_ARTIFACT, {
                      "artifactID": artifact.id, "description": artifact.description,
                      "metadata": json.dumps(_json_safe(artifact.metadata)),
                      "aliases": [{"alias": a, "artifactCollectionName":
                                   artifact.collection_name} for a in artifact.aliases]},
                  artifact.entity, artifact.project)


def delete_artifact(artifact: Artifact, delete_aliases: bool) -> None:
    """``artifact.delete()``."""
    execute_write(artifact._api, f"artifact.delete() of {artifact.qualified_name}",
                  DELETE_ARTIFACT, {"artifactID": artifact.id, "deleteAliases": delete_aliases},
                  artifact.entity, artifact.project)
