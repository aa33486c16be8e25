"""Artifacts: types, collections, versions, aliases, manifests and run links, in GraphQL shapes.

Writers take nodes exactly as the artifact queries return them:

- ``upsert_artifact_types``: ``ArtifactTypeFragment`` ``{id name description createdAt}``;
- ``upsert_collections``: ``ArtifactCollectionFragment`` ``{__typename id name description
  createdAt updatedAt type|defaultArtifactType{name} tags{edges{node{id name}}}}``;
- ``upsert_artifacts``: ``ArtifactFragment`` ``{id artifactSequence{name} versionIndex
  artifactType{name} description metadata ttlDurationSeconds ttlIsInherited tags[] historyStep
  state size digest commitHash fileCount createdAt updatedAt aliases?[]}``;
- ``upsert_membership``: ``ArtifactMembershipFragment`` (authoritative for aliases);
- ``put_manifest``: the manifest JSON text as downloaded (kept byte-exact, entries indexed);
- ``upsert_run_artifacts``: the nodes of ``run.inputArtifacts``/``outputArtifacts``.

Readers (``*_node``) give the same shapes back, minus the ``project`` sub-objects, which the
caller (the server) adds since they depend only on the project row.

Deleted upstream: a sync whose listing was complete stamps ``deleted_at`` on the collections and
versions upstream no longer lists (``mark_collections_gone``, ``mark_versions_gone``); the rows
stay, and the readers here (``get_collection``, ``list_collections``, ``resolve_alias``,
``get_version``, ``list_versions``, ``count_versions``, ``run_artifact_versions``) skip them, as
run listings skip deleted runs. An upsert of a listed node revives it.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.orm import Session

from ..errors import StoreError
from . import values
from .models import (
    ArtifactAlias,
    ArtifactCollection,
    ArtifactType,
    ArtifactVersion,
    ManifestEntry,
    Project,
    Run,
    RunArtifact,
)

__all__ = [
    "VERSION_ALIAS", "add_aliases", "alias_nodes", "artifact_node", "collection_node",
    "count_versions", "get_collection", "get_type", "get_version", "get_version_by_id",
    "get_version_by_index", "link_run_artifact", "list_collections", "list_entries",
    "list_types", "list_versions", "manifest_digest", "manifest_text", "mark_collections_gone",
    "mark_version_deleted", "mark_versions_gone", "membership_node", "put_manifest",
    "replace_aliases", "resolve_alias", "run_artifact_versions", "set_aliases", "type_node",
    "upsert_artifact_types", "upsert_artifacts", "upsert_collections", "upsert_membership",
    "upsert_run_artifacts", "version_users",
]

VERSION_ALIAS = re.compile(r"^v(\d+)$")
"""Aliases of the form ``v<N>`` name a version index."""

_VERSION_FIELDS = {
    "digest": "digest",
    "description": "description",
    "metadata": "metadata_raw",
    "commitHash": "commit_hash",
    "historyStep": "history_step",
    "ttlDurationSeconds": "ttl_duration_seconds",
    "ttlIsInherited": "ttl_is_inherited",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "state": "state",
}
_INT_FIELDS = {"size": "size", "fileCount": "file_count"}


# --------------------------------------------------------------------------- types


def get_type(session: Session, project_pk: int, name: str) -> ArtifactType | None:
    """An artifact type of a project by name."""
    return session.scalar(select(ArtifactType).where(ArtifactType.project_pk == project_pk,
                                                     ArtifactType.name == name))


def _ensure_type(session: Session, project: Project, name: str) -> ArtifactType:
    row = get_type(session, project.pk, name)
    if row is None:
        row = ArtifactType(project_pk=project.pk, name=name)
        session.add(row)
        session.flush()
    return row


def upsert_artifact_types(session: Session, project: Project,
                          nodes: Iterable[Mapping[str, Any]]) -> list[ArtifactType]:
    """Insert or update artifact types (keyed by ``name``)."""
    out = []
    for node in nodes:
        row = _ensure_type(session, project, node["name"])
        for field, attr in (("id", "upstream_id"), ("description", "description"),
                            ("createdAt", "created_at")):
            if field in node:
                setattr(row, attr, node[field])
        out.append(row)
    session.flush()
    return out


def list_types(session: Session, project_pk: int) -> list[ArtifactType]:
    """A project's artifact types by name."""
    return list(session.scalars(select(ArtifactType).where(ArtifactType.project_pk == project_pk)
                                .order_by(ArtifactType.name)))


def type_node(row: ArtifactType) -> dict[str, Any]:
    """An ``ArtifactTypeFragment`` node."""
    return {"__typename": "ArtifactType", "id": row.upstream_id, "name": row.name,
            "description": row.description, "createdAt": row.created_at}


# --------------------------------------------------------------------------- collections


def get_collection(session: Session, project_pk: int, name: str, *,
                   include_deleted: bool = False) -> ArtifactCollection | None:
    """An artifact collection of a project by name (one deleted upstream only with
    ``include_deleted``, as writers need)."""
    stmt = select(ArtifactCollection).where(ArtifactCollection.project_pk == project_pk,
                                            ArtifactCollection.name == name)
    if not include_deleted:
        stmt = stmt.where(ArtifactCollection.deleted_at.is_(None))
    return session.scalar(stmt)


def _ensure_collection(session: Session, project: Project, name: str,
                       type_name: str | None) -> ArtifactCollection:
    row = get_collection(session, project.pk, name, include_deleted=True)
    if row is None:
        if not type_name:
            raise StoreError(
                f"artifact collection {project.entity}/{project.name}/{name} is not in the store "
                "and the node does not name its artifact type; sync the collection first")
        row = ArtifactCollection(project_pk=project.pk, name=name,
                                 type_pk=_ensure_type(session, project, type_name).pk,
                                 kind="ArtifactSequence")
        session.add(row)
        session.flush()
    return row


def upsert_collections(session: Session, project: Project, nodes: Iterable[Mapping[str, Any]],
                       *, type_name: str | None = None) -> list[ArtifactCollection]:
    """Insert or update collections (keyed by ``name``).

    The type comes from the node's ``type``/``defaultArtifactType`` (``{name}``), else
    ``type_name``. A collection marked deleted is revived (upstream lists it again).
    """
    out = []
    for node in nodes:
        tnode = node.get("type") or node.get("defaultArtifactType") or {}
        row = _ensure_collection(session, project, node["name"], tnode.get("name") or type_name)
        row.deleted_at = None
        if tnode.get("name"):
            row.type_pk = _ensure_type(session, project, tnode["name"]).pk
        if node.get("__typename") in ("ArtifactSequence", "ArtifactPortfolio"):
            row.kind = node["__typename"]
        for field, attr in (("id", "upstream_id"), ("description", "description"),
                            ("createdAt", "created_at"), ("updatedAt", "updated_at")):
            if field in node:
                setattr(row, attr, node[field])
        if "tags" in node:
            tags = node["tags"]
            if isinstance(tags, Mapping):
                tags = [e.get("node") for e in tags.get("edges") or [] if e.get("node")]
            row.tags_raw = values.dumps(tags) if tags is not None else None
        out.append(row)
    session.flush()
    return out


def list_collections(session: Session, project_pk: int, *, type_pk: int | None = None
                     ) -> list[ArtifactCollection]:
    """A project's collections (optionally of one type), oldest first then by name; those
    deleted upstream are left out."""
    stmt = select(ArtifactCollection).where(ArtifactCollection.project_pk == project_pk,
                                            ArtifactCollection.deleted_at.is_(None))
    if type_pk is not None:
        stmt = stmt.where(ArtifactCollection.type_pk == type_pk)
    return list(session.scalars(stmt.order_by(ArtifactCollection.created_at,
                                              ArtifactCollection.name)))


def collection_node(row: ArtifactCollection, type_row: ArtifactType) -> dict[str, Any]:
    """An ``ArtifactCollectionFragment`` node (``tags`` as a connection, type under both names)."""
    tags = values.loads(row.tags_raw) if row.tags_raw else []
    return {
        "__typename": row.kind or "ArtifactSequence",
        "id": row.upstream_id,
        "name": row.name,
        "description": row.description,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
        "defaultArtifactType": {"name": type_row.name},
        "tags": {"edges": [{"node": {"__typename": "Tag", **t}} for t in tags]},
    }


# --------------------------------------------------------------------------- versions


def get_version_by_id(session: Session, upstream_id: str) -> ArtifactVersion | None:
    """A version by its upstream (GraphQL) id."""
    return session.scalar(select(ArtifactVersion).where(ArtifactVersion.upstream_id == upstream_id))


def get_version_by_index(session: Session, collection_pk: int, index: int) -> ArtifactVersion | None:
    """A version by collection and version index."""
    return session.scalar(select(ArtifactVersion).where(
        ArtifactVersion.collection_pk == collection_pk, ArtifactVersion.version_index == index))


def resolve_alias(session: Session, collection_pk: int, alias: str | None) -> ArtifactVersion | None:
    """The version an alias names: an alias row first, then ``v<N>``; None/"" means ``latest``.

    Without a ``latest`` alias row, ``latest`` is the highest version index. Versions deleted
    upstream are never returned (an alias still pointing at one names nothing).
    """
    alias = alias or "latest"
    row = session.scalar(select(ArtifactVersion).join(
        ArtifactAlias, ArtifactAlias.version_pk == ArtifactVersion.pk).where(
        ArtifactAlias.collection_pk == collection_pk, ArtifactAlias.alias == alias,
        ArtifactVersion.deleted_at.is_(None)))
    if row is not None:
        return row
    match = VERSION_ALIAS.match(alias)
    if match:
        row = get_version_by_index(session, collection_pk, int(match.group(1)))
        return row if row is not None and row.deleted_at is None else None
    if alias == "latest":
        return session.scalar(select(ArtifactVersion).where(
            ArtifactVersion.collection_pk == collection_pk, ArtifactVersion.deleted_at.is_(None))
            .order_by(ArtifactVersion.version_index.desc()).limit(1))
    return None


def get_version(session: Session, project_pk: int, name: str) -> ArtifactVersion | None:
    """A version by ``"<collection>:<alias or vN>"`` (no ``:`` means ``latest``); None when
    it, or its collection, was deleted upstream."""
    coll_name, _, alias = name.partition(":")
    coll = get_collection(session, project_pk, coll_name)
    return None if coll is None else resolve_alias(session, coll.pk, alias)


def upsert_artifacts(session: Session, project: Project,
                     nodes: Iterable[Mapping[str, Any]]) -> list[ArtifactVersion]:
    """Insert or update versions from ``ArtifactFragment`` nodes (keyed by ``id``).

    The collection is ``artifactSequence.name`` (created with ``artifactType.name`` when new).
    When the node carries ``aliases``, those naming its own collection replace the version's
    aliases. A version marked deleted is revived (upstream lists it again).
    """
    out = []
    for node in nodes:
        seq = node.get("artifactSequence") or {}
        atype = (node.get("artifactType") or {}).get("name")
        row = get_version_by_id(session, node["id"])
        if row is None:
            if not seq.get("name"):
                raise StoreError(f"artifact node {node['id']!r} has no artifactSequence.name")
            coll = _ensure_collection(session, project, seq["name"], atype)
            if seq.get("__typename") in ("ArtifactSequence",) and coll.upstream_id is None:
                coll.kind = "ArtifactSequence"
            index = node.get("versionIndex")
            if index is None:
                raise StoreError(f"artifact node {node['id']!r} has no versionIndex")
            row = get_version_by_index(session, coll.pk, int(index))
            if row is None:
                row = ArtifactVersion(collection_pk=coll.pk, upstream_id=node["id"],
                                      version_index=int(index))
                session.add(row)
            row.upstream_id = node["id"]
        elif node.get("versionIndex") is not None:
            row.version_index = int(node["versionIndex"])
        row.deleted_at = None
        for field, attr in _VERSION_FIELDS.items():
            if field in node:
                setattr(row, attr, node[field])
        for field, attr in _INT_FIELDS.items():
            if field in node:
                setattr(row, attr, None if node[field] is None else int(node[field]))
        if "tags" in node:
            row.tags_raw = values.dumps(node["tags"]) if node["tags"] is not None else None
        session.flush()
        if node.get("aliases") is not None:
            own = [a for a in node["aliases"]
                   if (a.get("artifactCollection") or {}).get("name", seq.get("name")) == seq.get("name")]
            set_aliases(session, row, own)
        out.append(row)
    session.flush()
    return out


def set_aliases(session: Session, version: ArtifactVersion,
                aliases: Sequence[Mapping[str, Any]]) -> None:
    """Make ``aliases`` (``{id, alias}`` nodes) exactly the aliases of ``version``.

    An alias held by another version of the collection moves to this one.
    """
    wanted = {a["alias"]: a.get("id") for a in aliases}
    session.execute(delete(ArtifactAlias).where(ArtifactAlias.version_pk == version.pk,
                                                ArtifactAlias.alias.not_in(list(wanted))))
    session.execute(delete(ArtifactAlias).where(ArtifactAlias.collection_pk == version.collection_pk,
                                                ArtifactAlias.alias.in_(list(wanted)),
                                                ArtifactAlias.version_pk != version.pk))
    have = {a.alias: a for a in session.scalars(select(ArtifactAlias).where(
        ArtifactAlias.version_pk == version.pk))}
    for alias, upstream_id in wanted.items():
        row = have.get(alias)
        if row is None:
            session.add(ArtifactAlias(collection_pk=version.collection_pk, version_pk=version.pk,
                                      alias=alias, upstream_id=upstream_id))
        elif upstream_id is not None:
            row.upstream_id = upstream_id
    session.flush()


def add_aliases(session: Session, version: ArtifactVersion, aliases: Iterable[str]) -> None:
    """Give ``version`` these aliases too (its other aliases stay; an alias held by another
    version of the collection moves here)."""
    _merge_aliases(session, version, aliases, keep=lambda alias: True)


def replace_aliases(session: Session, version: ArtifactVersion, aliases: Iterable[str]) -> None:
    """Make ``aliases`` the aliases of ``version``, keeping its ``v<N>`` ones (what
    ``artifact.save()`` means: it sends the aliases other than the version's)."""
    _merge_aliases(session, version, aliases, keep=lambda alias: bool(VERSION_ALIAS.match(alias)))


def _merge_aliases(session: Session, version: ArtifactVersion, aliases: Iterable[str],
                   keep: Callable[[str], bool]) -> None:
    """Set the version's aliases to those it has that ``keep`` accepts, then ``aliases``."""
    kept = [{"alias": a.alias, "id": a.upstream_id} for a in session.scalars(
        select(ArtifactAlias).where(ArtifactAlias.version_pk == version.pk)
        .order_by(ArtifactAlias.pk)) if keep(a.alias)]
    names = {a["alias"] for a in kept}
    set_aliases(session, version, kept + [{"alias": a} for a in aliases if a not in names])


def alias_nodes(session: Session, version_pk: int) -> list[dict[str, Any]]:
    """``{__typename, id, alias}`` nodes of a version's aliases, in insertion order."""
    return [{"__typename": "ArtifactAlias", "id": a.upstream_id, "alias": a.alias}
            for a in session.scalars(select(ArtifactAlias).where(ArtifactAlias.version_pk == version_pk)
                                     .order_by(ArtifactAlias.pk))]


def upsert_membership(session: Session, project: Project, node: Mapping[str, Any]) -> ArtifactVersion:
    """Store an ``ArtifactMembershipFragment`` node: its artifact, then its aliases."""
    artifact = dict(node["artifact"])
    artifact.pop("aliases", None)
    coll = (node.get("artifactCollection") or {}).get("name")
    if coll and not (artifact.get("artifactSequence") or {}).get("name"):
        artifact["artifactSequence"] = {"name": coll}
    if node.get("versionIndex") is not None and artifact.get("versionIndex") is None:
        artifact["versionIndex"] = node["versionIndex"]
    (row,) = upsert_artifacts(session, project, [artifact])
    if node.get("aliases") is not None:
        set_aliases(session, row, node["aliases"])
    return row


def list_versions(session: Session, collection_pk: int, *, states: Sequence[str] | None = None,
                  where: ColumnElement[bool] | None = None,
                  descending: bool = False) -> list[ArtifactVersion]:
    """A collection's versions by version index (``states`` filters on ``state``; ``where`` is
    an extra condition on ``ArtifactVersion``, e.g. a compiled filter from ``query``)."""
    stmt = select(ArtifactVersion).where(ArtifactVersion.collection_pk == collection_pk,
                                         ArtifactVersion.deleted_at.is_(None))
    if states:
        stmt = stmt.where(ArtifactVersion.state.in_(list(states)))
    if where is not None:
        stmt = stmt.where(where)
    order = ArtifactVersion.version_index.desc() if descending else ArtifactVersion.version_index
    return list(session.scalars(stmt.order_by(order)))


def count_versions(session: Session, collection_pk: int) -> int:
    """Number of a collection's versions."""
    return int(session.scalar(select(func.count()).select_from(ArtifactVersion).where(
        ArtifactVersion.collection_pk == collection_pk, ArtifactVersion.deleted_at.is_(None))) or 0)


def artifact_node(row: ArtifactVersion, coll: ArtifactCollection, type_row: ArtifactType,
                  aliases: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An ``ArtifactFragment`` node (``artifactSequence`` without ``project``)."""
    return {
        "__typename": "Artifact",
        "id": row.upstream_id,
        "artifactSequence": {"__typename": "ArtifactSequence", "name": coll.name},
        "versionIndex": row.version_index,
        "artifactType": {"name": type_row.name},
        "description": row.description,
        "metadata": row.metadata_raw,
        "ttlDurationSeconds": row.ttl_duration_seconds if row.ttl_duration_seconds is not None else -1,
        "ttlIsInherited": row.ttl_is_inherited if row.ttl_is_inherited is not None else True,
        "tags": values.loads(row.tags_raw) if row.tags_raw else [],
        "historyStep": row.history_step,
        "state": row.state,
        "size": row.size,
        "digest": row.digest,
        "commitHash": row.commit_hash,
        "fileCount": row.file_count,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
        "aliases": aliases if aliases is not None else [],
    }


def membership_node(row: ArtifactVersion, coll: ArtifactCollection, type_row: ArtifactType,
                    aliases: list[dict[str, Any]]) -> dict[str, Any]:
    """An ``ArtifactMembershipFragment`` node of a version in its own collection."""
    return {
        "__typename": "ArtifactCollectionMembership",
        "id": row.upstream_id,
        "versionIndex": row.version_index,
        "createdAt": row.created_at,
        "aliases": aliases,
        "artifactCollection": {"__typename": coll.kind or "ArtifactSequence", "name": coll.name},
        "artifact": artifact_node(row, coll, type_row, aliases),
    }


# --------------------------------------------------------------------------- manifests


def manifest_digest(contents: Mapping[str, Mapping[str, Any]]) -> str:
    """W&B's manifest digest: MD5 hex of the header plus ``path:digest`` lines in path order."""
    h = hashlib.md5(b"wandb-artifact-manifest-v1\n")
    for path in sorted(contents):
        h.update(f"{path}:{contents[path]['digest']}\n".encode())
    return h.hexdigest()


def put_manifest(session: Session, version: ArtifactVersion, text: str | bytes) -> None:
    """Store a version's manifest JSON text byte-exact and index its entries.

    Raises:
        StoreError: the text is not a version-1 manifest.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        doc = values.loads(text)
    except ValueError as exc:
        raise StoreError(f"artifact {version.upstream_id}: manifest is not JSON: {exc}") from exc
    if not isinstance(doc, Mapping) or doc.get("version") != 1:
        raise StoreError(f"artifact {version.upstream_id}: not a version-1 manifest")
    version.manifest_raw = text
    session.execute(delete(ManifestEntry).where(ManifestEntry.version_pk == version.pk))
    rows = []
    for path, entry in (doc.get("contents") or {}).items():
        extra = entry.get("extra")
        rows.append({"version_pk": version.pk, "path": path, "digest": entry.get("digest", ""),
                     "size": entry.get("size"), "ref": entry.get("ref"),
                     "birth_artifact_id": entry.get("birthArtifactID"),
                     "extra_raw": values.dumps(extra) if extra else None})
    if rows:
        session.execute(insert(ManifestEntry), rows)
    session.flush()


def manifest_text(version: ArtifactVersion) -> str | None:
    """The manifest JSON text as stored, or None when it was never fetched."""
    return version.manifest_raw


def list_entries(session: Session, version_pk: int, *, names: Sequence[str] | None = None,
                 stored_only: bool = False) -> list[ManifestEntry]:
    """A version's manifest entries by path; ``stored_only`` drops reference entries."""
    stmt = select(ManifestEntry).where(ManifestEntry.version_pk == version_pk)
    if names:
        stmt = stmt.where(ManifestEntry.path.in_(list(names)))
    if stored_only:
        stmt = stmt.where(ManifestEntry.ref.is_(None))
    return list(session.scalars(stmt.order_by(ManifestEntry.path)))


# --------------------------------------------------------------------------- run links


def link_run_artifact(session: Session, run: Run, version: ArtifactVersion, direction: str) -> None:
    """Record that ``run`` used (``input``) or logged (``output``) ``version``."""
    if direction not in ("input", "output"):
        raise ValueError(f"direction must be 'input' or 'output', not {direction!r}")
    if session.get(RunArtifact, (run.pk, version.pk, direction)) is None:
        session.add(RunArtifact(run_pk=run.pk, version_pk=version.pk, direction=direction))
        session.flush()


def upsert_run_artifacts(session: Session, project: Project, run: Run, direction: str,
                         nodes: Iterable[Mapping[str, Any]]) -> list[ArtifactVersion]:
    """Store ``run.inputArtifacts``/``outputArtifacts`` nodes and link them to ``run``."""
    rows = upsert_artifacts(session, project, list(nodes))
    for row in rows:
        link_run_artifact(session, run, row, direction)
    return rows


def run_artifact_versions(session: Session, run_pk: int, direction: str) -> list[ArtifactVersion]:
    """Versions a run used or logged, in version-pk order (those deleted upstream left out)."""
    return list(session.scalars(select(ArtifactVersion).join(
        RunArtifact, RunArtifact.version_pk == ArtifactVersion.pk).where(
        RunArtifact.run_pk == run_pk, RunArtifact.direction == direction,
        ArtifactVersion.deleted_at.is_(None))
        .order_by(ArtifactVersion.pk)))


def version_users(session: Session, version_pk: int, direction: str = "input") -> list[Run]:
    """Runs that used (``input``) or logged (``output``) a version (deleted runs left out)."""
    return list(session.scalars(select(Run).join(RunArtifact, RunArtifact.run_pk == Run.pk).where(
        RunArtifact.version_pk == version_pk, RunArtifact.direction == direction,
        Run.deleted_at.is_(None)).order_by(Run.pk)))


# --------------------------------------------------------------------------- deleted upstream


def mark_versions_gone(session: Session, collection_pk: int, seen_ids: Iterable[str],
                       stamp: str) -> int:
    """After a complete listing of a collection's versions: stamp ``deleted_at`` on its
    versions whose id the listing did not hold. Returns how many were marked."""
    seen = set(seen_ids)
    gone = [row for row in session.scalars(select(ArtifactVersion).where(
        ArtifactVersion.collection_pk == collection_pk, ArtifactVersion.deleted_at.is_(None)))
        if row.upstream_id not in seen]
    for row in gone:
        row.deleted_at = stamp
    session.flush()
    return len(gone)


def mark_version_deleted(session: Session, version: ArtifactVersion, stamp: str) -> None:
    """Mark one version deleted (kept, hidden from readers) and drop its aliases."""
    version.deleted_at = stamp
    session.execute(delete(ArtifactAlias).where(ArtifactAlias.version_pk == version.pk))
    session.flush()


def mark_collections_gone(session: Session, project_pk: int, seen_names: Iterable[str],
                          stamp: str) -> tuple[int, int]:
    """After a complete listing of a project's collections (every type): stamp ``deleted_at``
    on the collections it did not hold, and on their versions. Returns
    ``(collections, versions)`` marked."""
    seen = set(seen_names)
    gone = [row for row in session.scalars(select(ArtifactCollection).where(
        ArtifactCollection.project_pk == project_pk, ArtifactCollection.deleted_at.is_(None)))
        if row.name not in seen]
    versions = 0
    for row in gone:
        row.deleted_at = stamp
        versions += mark_versions_gone(session, row.pk, (), stamp)
    session.flush()
    return len(gone), versions
