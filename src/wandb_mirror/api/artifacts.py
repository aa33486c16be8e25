"""Artifacts: ``Artifact`` (with its manifest, files, download and verify), types, collections,
version listings and a run's logged/used artifacts, answered from the store.

File bytes come from the store's content cache, keyed by the base64 MD5 that is also the
manifest entry's digest; online, missing bytes are fetched (signed URLs from the server) and
cached. Reference entries (``ref``) are never downloaded, as ``verify`` never checks them.
"""
from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from ..errors import OfflineError
from ..paths import split_artifact_name, sync_command
from ..store import artifacts as A
from ..store import files as store_files
from ..store import values
from ..store.engine import session_scope
from ..store.models import ArtifactCollection as CollectionRow
from ..store.models import ArtifactType as TypeRow
from ..store.models import ArtifactVersion as VersionRow
from .base import Attrs, Paginator
from .files import safe_join

if TYPE_CHECKING:
    from .api import Api
    from .runs import Run

__all__ = [
    "Artifact", "ArtifactCollection", "ArtifactCollections", "ArtifactFile", "ArtifactFiles",
    "ArtifactManifest", "ArtifactType", "ArtifactTypes", "ArtifactVersions", "ManifestEntry",
    "RunArtifacts", "artifact_from_row",
]

_FILE_URLS = """
query ArtifactFileUrls($entity: String!, $project: String!, $collection: String!,
                       $alias: String!, $cursor: String, $first: Int) {
  project(name: $project, entityName: $entity) {
    artifactCollection(name: $collection) {
      artifactMembership(aliasName: $alias) {
        files(after: $cursor, first: $first) {
          pageInfo { hasNextPage endCursor }
          edges { cursor node { name directUrl } }
        }
      }
    }
  }
}
"""


@dataclass
class ManifestEntry:
    """One manifest entry (``contents[path]``)."""

    path: str
    digest: str
    size: int | None = None
    ref: str | None = None
    birth_artifact_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class ArtifactManifest:
    """A version-1 artifact manifest: ``entries`` by path, ``digest()``, ``size()``."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.version = doc.get("version", 1)
        self.storage_policy = doc.get("storagePolicy")
        self.storage_policy_config = doc.get("storagePolicyConfig") or {}
        self.entries: dict[str, ManifestEntry] = {}
        for path, e in (doc.get("contents") or {}).items():
            self.entries[path] = ManifestEntry(
                path=path, digest=e.get("digest", ""), size=e.get("size"), ref=e.get("ref"),
                birth_artifact_id=e.get("birthArtifactID"), extra=e.get("extra") or {})
        self._doc = doc

    def digest(self) -> str:
        """W&B's manifest digest (MD5 hex of the sorted ``path:digest`` lines)."""
        return A.manifest_digest({p: {"digest": e.digest} for p, e in self.entries.items()})

    def size(self) -> int:
        """Total size of the entries (references included)."""
        return sum(e.size or 0 for e in self.entries.values())

    def get_entry_by_path(self, path: str) -> ManifestEntry | None:
        return self.entries.get(path)

    def to_manifest_json(self) -> dict[str, Any]:
        """The manifest document as stored."""
        return self._doc

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"<ArtifactManifest {len(self.entries)} entries>"


def _md5_b64_file(path: str) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return base64.b64encode(h.digest()).decode("ascii")


class Artifact:
    """An artifact version.

    Attributes:
        id: GraphQL node id. entity, project: where it was asked for.
        name: ``"<collection>:<alias or version>"`` as requested (``:v<N>`` when listed).
        qualified_name: ``entity/project/name``. version: ``"v<N>"``. source_name:
            ``"<collection>:v<N>"``. aliases: aliases other than ``v<N>``. type, description,
            metadata (dict), tags, state, size, digest, commit_hash, file_count, created_at,
            updated_at, history_step, ttl_duration_seconds.
    """

    def __init__(self, api: Api, entity: str, project: str, row: VersionRow,
                 coll: CollectionRow, type_row: TypeRow, aliases: list[dict[str, Any]],
                 name: str | None = None) -> None:
        self._api = api
        self._pk = row.pk
        self.id = row.upstream_id
        self.entity = entity
        self.project = project
        self.source_entity = entity
        self.source_project = project
        self.collection_name = coll.name
        self.source_version = f"v{row.version_index}"
        self.source_name = f"{coll.name}:v{row.version_index}"
        names = [a["alias"] for a in aliases]
        version_aliases = [a for a in names if A.VERSION_ALIAS.match(a)]
        self.version = version_aliases[0] if version_aliases else f"v{row.version_index}"
        self.name = name if name and ":" in name else f"{name or coll.name}:{self.version}"
        self.qualified_name = f"{entity}/{project}/{self.name}"
        self.aliases = [a for a in names if not A.VERSION_ALIAS.match(a)]
        self.type = type_row.name
        self.description = row.description
        meta = values.loads(row.metadata_raw) if row.metadata_raw else None
        self.metadata: dict[str, Any] = meta if isinstance(meta, dict) else {}
        tags = values.loads(row.tags_raw) if row.tags_raw else []
        self.tags = [t["name"] if isinstance(t, dict) else t for t in tags]
        self.state = row.state
        self._size = row.size
        self._digest = row.digest
        self.commit_hash = row.commit_hash
        self.file_count = row.file_count
        self.created_at = row.created_at
        self.updated_at = row.updated_at or row.created_at
        self.history_step = row.history_step
        self.ttl_duration_seconds = row.ttl_duration_seconds
        self.is_link = False
        self._manifest_raw = row.manifest_raw
        self._manifest: ArtifactManifest | None = None

    # ------------------------------------------------------------------ contents

    @property
    def manifest(self) -> ArtifactManifest:
        """The manifest (from the store).

        Raises:
            OfflineError: the manifest was never mirrored.
        """
        if self._manifest is None:
            if self._manifest_raw is None:
                raise OfflineError(
                    f"the manifest of artifact {self.qualified_name} is not in the store; run "
                    f"`{sync_command(self.entity, self.project)}`")
            self._manifest = ArtifactManifest(values.loads(self._manifest_raw))
        return self._manifest

    @property
    def digest(self) -> str:
        return self._digest if self._digest is not None else self.manifest.digest()

    @property
    def size(self) -> int:
        return self._size if self._size is not None else self.manifest.size()

    @property
    def url(self) -> str:
        return (f"{self._api._app_url}/{self.entity}/{self.project}/artifacts/{self.type}/"
                f"{self.collection_name}/{self.version}")

    def get_entry(self, name: str) -> ManifestEntry:
        """The manifest entry of an artifact path.

        Raises:
            KeyError: no such entry.
        """
        entry = self.manifest.entries.get(name)
        if entry is None:
            raise KeyError(f"Path not contained in artifact: {name}")
        return entry

    def files(self, names: list[str] | None = None, per_page: int = 50) -> ArtifactFiles:
        """The artifact's files (manifest entries), by path."""
        return ArtifactFiles(self, names, per_page=per_page)

    def _default_root(self) -> str:
        return os.path.join(".", "artifacts", self.source_name)

    def _read(self, entry: ManifestEntry, cache: dict[str, str] | None = None) -> bytes:
        with session_scope(self._api._engine, f"reading {self.name}/{entry.path}") as s:
            data = store_files.get_content(s, entry.digest)
        if data is not None:
            return data
        if self._api._offline:
            raise OfflineError(
                f"{entry.path} of artifact {self.qualified_name} is not in the store's content "
                "cache and this Api is offline; download it once online")
        urls = cache if cache is not None else self._file_urls()
        url = urls.get(entry.path)
        if not url:
            raise OfflineError(f"the server gave no URL for {entry.path} of {self.qualified_name}")
        data = self._api._client().get_bytes(url)
        with session_scope(self._api._engine, f"caching {self.name}/{entry.path}") as s:
            store_files.put_content(s, entry.digest, data)
        return data

    def _file_urls(self) -> dict[str, str]:
        client = self._api._client()
        out: dict[str, str] = {}
        variables = {"entity": self.entity, "project": self.project,
                     "collection": self.collection_name, "alias": self.version}
        for _, nodes in client.pages(_FILE_URLS, variables, (
                "project", "artifactCollection", "artifactMembership", "files"), first=5000):
            out.update({n["name"]: n["directUrl"] for n in nodes if n.get("directUrl")})
        return out

    def download(self, root: str | None = None, allow_missing_references: bool = False,
                 skip_cache: bool | None = None, path_prefix: str | None = None,
                 multipart: bool | None = None) -> str:
        """Write every stored (non-reference) file under ``root``; return ``root``.

        ``root`` defaults to ``./artifacts/<collection>:v<N>``; ``path_prefix`` limits the
        download to paths starting with it.

        Raises:
            OfflineError: some bytes are not cached and the Api is offline.
        """
        root = root or self._default_root()
        urls: dict[str, str] | None = None
        for entry in self.manifest.entries.values():
            if entry.ref is not None or (path_prefix and not entry.path.startswith(path_prefix)):
                continue
            target = safe_join(root, entry.path)
            if os.path.exists(target) and _md5_b64_file(target) == entry.digest:
                continue
            try:
                data = self._read(entry, urls if urls is not None else {})
            except OfflineError:
                if self._api._offline:
                    raise
                urls = self._file_urls()
                data = self._read(entry, urls)
            os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
            with open(target + ".part", "wb") as fh:
                fh.write(data)
            os.replace(target + ".part", target)
        return root

    def file(self, root: str | None = None) -> str:
        """Download a single-file artifact; return the file's path.

        Raises:
            ValueError: the artifact holds more than one file.
        """
        entries = [e for e in self.manifest.entries.values()]
        if len(entries) != 1:
            raise ValueError("This artifact contains more than one file, call `.download()` "
                             "to get all files or call .get_entry(\"filename\").download()")
        root = self.download(root)
        return os.path.join(root, entries[0].path)

    def verify(self, root: str | None = None) -> None:
        """Check that ``root`` holds exactly the artifact's stored files with their digests.

        Raises:
            ValueError: a file is not in the artifact, or a digest differs.
        """
        root = root or self._default_root()
        for dirpath, _, names in os.walk(root):
            for fname in names:
                full = os.path.join(dirpath, fname)
                rel = os.path.relpath(full, start=root)
                if rel not in self.manifest.entries:
                    raise ValueError(f"Found file {full} which is not a member of artifact "
                                     f"{self.name}")
        for entry in self.manifest.entries.values():
            if entry.ref is None and _md5_b64_file(safe_join(root, entry.path)) != entry.digest:
                raise ValueError(f"Digest mismatch for file: {entry.path}")

    # ------------------------------------------------------------------ lineage

    def used_by(self) -> list[Run]:
        """Runs that used this version."""
        return self._runs("input")

    def logged_by(self) -> Run | None:
        """The run that logged this version (None when unknown)."""
        runs = self._runs("output")
        return runs[0] if runs else None

    def _runs(self, direction: str) -> list[Run]:
        from .runs import Run

        pk = self._api._project_pk(self.entity, self.project)
        with session_scope(self._api._engine) as s:
            rows = A.version_users(s, self._pk, direction)
            from ..store.models import User as UserRow

            users = {r.pk: (s.get(UserRow, r.user_pk) if r.user_pk else None) for r in rows}
        return [Run(self._api, self.entity, self.project, r, users[r.pk], pk) for r in rows]

    # ------------------------------------------------------------------ writes

    def save(self) -> None:
        """Persist description, metadata, aliases and tags upstream (online only)."""
        from . import writes

        writes.update_artifact(self)

    def delete(self, delete_aliases: bool = False) -> None:
        """Delete this version upstream (online only)."""
        from . import writes

        writes.delete_artifact(self, delete_aliases)

    def __repr__(self) -> str:
        return f"<Artifact {self.qualified_name} ({self.type})>"


def artifact_from_row(api: Api, session: Session, entity: str, project: str, row: VersionRow,
                      name: str | None = None) -> Artifact:
    """Build an :class:`Artifact` from a stored version (``name``: as requested)."""
    coll = session.get(CollectionRow, row.collection_pk)
    type_row = session.get(TypeRow, coll.type_pk)
    return Artifact(api, entity, project, row, coll, type_row, A.alias_nodes(session, row.pk),
                    name=name)


class ArtifactFile(Attrs):
    """A file of an artifact: ``name``, ``size``, ``digest``, ``md5``, ``ref``;
    ``download(root)`` from the content cache."""

    def __init__(self, artifact: Artifact, entry: ManifestEntry) -> None:
        super().__init__({"name": entry.path, "sizeBytes": entry.size, "digest": entry.digest,
                          "md5": entry.digest if entry.ref is None else None, "ref": entry.ref,
                          "url": None, "directUrl": entry.ref, "mimetype": None})
        self.artifact = artifact
        self._entry = entry

    @property
    def size(self) -> int:
        return int(self._entry.size or 0)

    def download(self, root: str = ".", replace: bool = False, exist_ok: bool = False) -> str:
        """Write the file under ``root``; return its path.

        Raises:
            ValueError: it exists and neither ``replace`` nor ``exist_ok`` is set, or it is a
                reference entry.
        """
        if self._entry.ref is not None:
            raise ValueError(f"{self.name} is a reference to {self._entry.ref}; fetch it there")
        path = safe_join(root, self.name)
        if os.path.exists(path) and not replace:
            if exist_ok:
                return path
            raise ValueError("File already exists, pass replace=True to overwrite")
        data = self.artifact._read(self._entry)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
        return path

    def __repr__(self) -> str:
        return f"<ArtifactFile {self.name} {self.size}B>"


class ArtifactFiles(Paginator[ArtifactFile]):
    """An artifact's stored files (manifest entries without ``ref``) in path order."""

    def __init__(self, artifact: Artifact, names: Sequence[str] | None = None,
                 per_page: int = 50) -> None:
        super().__init__(per_page)
        self.artifact = artifact
        # Reference entries are not files of the artifact upstream either.
        entries = sorted((e for e in artifact.manifest.entries.values() if e.ref is None),
                         key=lambda e: e.path)
        if names:
            wanted = set(names)
            entries = [e for e in entries if e.path in wanted]
        self._entries = entries

    def _fetch(self, offset: int, limit: int) -> list[ArtifactFile]:
        return [ArtifactFile(self.artifact, e) for e in self._entries[offset:offset + limit]]

    def _count(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<ArtifactFiles {self.artifact.qualified_name} ({len(self)})>"


class ArtifactType(Attrs):
    """An artifact type of a project: ``name``, ``id``, ``description``, ``created_at``."""

    def __init__(self, api: Api, entity: str, project: str, attrs: dict[str, Any]) -> None:
        super().__init__(attrs)
        self._api = api
        self.entity = entity
        self.project = project

    @property
    def name(self) -> str:
        return self._attrs["name"]

    @property
    def type(self) -> str:
        return self._attrs["name"]

    def collections(self, per_page: int = 50) -> ArtifactCollections:
        """The collections of this type."""
        return ArtifactCollections(self._api, self.entity, self.project, self.name,
                                   per_page=per_page)

    def collection(self, name: str) -> ArtifactCollection:
        """One collection of this type."""
        return self._api.artifact_collection(self.name, f"{self.entity}/{self.project}/{name}")

    def __repr__(self) -> str:
        return f"<ArtifactType {self.name}>"


class ArtifactTypes(Paginator[ArtifactType]):
    """A project's artifact types by name."""

    def __init__(self, api: Api, entity: str, project: str, per_page: int = 50) -> None:
        super().__init__(per_page)
        self._api = api
        self.entity = entity
        self.project = project

    def _fetch(self, offset: int, limit: int) -> list[ArtifactType]:
        pk = self._api._project_pk(self.entity, self.project)
        with session_scope(self._api._engine) as s:
            nodes = [A.type_node(t) for t in A.list_types(s, pk)[offset:offset + limit]]
        return [ArtifactType(self._api, self.entity, self.project, n) for n in nodes]

    def _count(self) -> int:
        pk = self._api._project_pk(self.entity, self.project)
        with session_scope(self._api._engine) as s:
            return len(A.list_types(s, pk))

    def __repr__(self) -> str:
        return f"<ArtifactTypes {self.entity}/{self.project}>"


class ArtifactCollection(Attrs):
    """An artifact collection: ``name``, ``type``, ``id``, ``description``, ``created_at``,
    ``updated_at``, ``tags``, ``aliases``; ``artifacts()``/``versions()``."""

    def __init__(self, api: Api, entity: str, project: str, attrs: dict[str, Any],
                 aliases: list[str]) -> None:
        super().__init__(attrs)
        self._api = api
        self.entity = entity
        self.project = project
        self.aliases = aliases

    @property
    def name(self) -> str:
        return self._attrs["name"]

    @property
    def type(self) -> str:
        return self._attrs["defaultArtifactType"]["name"]

    @property
    def tags(self) -> list[str]:
        return [e["node"]["name"] for e in (self._attrs.get("tags") or {}).get("edges", [])]

    def is_sequence(self) -> bool:
        return self._attrs.get("__typename") == "ArtifactSequence"

    def artifacts(self, per_page: int = 50) -> ArtifactVersions:
        """The collection's committed versions."""
        return ArtifactVersions(self._api, self.entity, self.project, self.name, self.type,
                                per_page=per_page)

    versions = artifacts

    def __repr__(self) -> str:
        return f"<ArtifactCollection {self.name} ({self.type})>"


def _collection(api: Api, s: Session, entity: str, project: str,
                row: CollectionRow) -> ArtifactCollection:
    from sqlalchemy import select

    from ..store.models import ArtifactAlias

    type_row = s.get(TypeRow, row.type_pk)
    # an alias left on a version deleted upstream names nothing any more
    aliases = list(s.scalars(select(ArtifactAlias.alias).join(
        VersionRow, VersionRow.pk == ArtifactAlias.version_pk).where(
        ArtifactAlias.collection_pk == row.pk, VersionRow.deleted_at.is_(None))
        .order_by(ArtifactAlias.pk)))
    return ArtifactCollection(api, entity, project, A.collection_node(row, type_row), aliases)


class ArtifactCollections(Paginator[ArtifactCollection]):
    """A project's collections (of one type, or all)."""

    def __init__(self, api: Api, entity: str, project: str, type_name: str | None,
                 per_page: int = 50) -> None:
        super().__init__(per_page)
        self._api = api
        self.entity = entity
        self.project = project
        self.type_name = type_name

    def _rows(self, s: Session) -> list[CollectionRow]:
        pk = self._api._project_pk(self.entity, self.project)
        type_pk = None
        if self.type_name is not None:
            t = A.get_type(s, pk, self.type_name)
            if t is None:
                return []
            type_pk = t.pk
        return A.list_collections(s, pk, type_pk=type_pk)

    def _fetch(self, offset: int, limit: int) -> list[ArtifactCollection]:
        with session_scope(self._api._engine) as s:
            return [_collection(self._api, s, self.entity, self.project, r)
                    for r in self._rows(s)[offset:offset + limit]]

    def _count(self) -> int:
        with session_scope(self._api._engine) as s:
            return len(self._rows(s))

    def __repr__(self) -> str:
        return f"<ArtifactCollections {self.entity}/{self.project}>"


class ArtifactVersions(Paginator[Artifact]):
    """A collection's versions (``COMMITTED`` only, as upstream's default filter), newest
    first; ``tags`` keeps versions carrying all of them."""

    def __init__(self, api: Api, entity: str, project: str, collection: str,
                 type_name: str | None = None, per_page: int = 50,
                 tags: Sequence[str] | None = None, descending: bool = True) -> None:
        super().__init__(per_page)
        self._api = api
        self.entity = entity
        self.project = project
        self.collection_name = collection
        self.type = type_name
        self.tags = list(tags or [])
        self.descending = descending
        self._cache: list[int] | None = None

    def _version_pks(self, s: Session) -> list[int]:
        if self._cache is None:
            pk = self._api._project_pk(self.entity, self.project)
            coll = A.get_collection(s, pk, self.collection_name)
            rows = [] if coll is None else A.list_versions(
                s, coll.pk, states=["COMMITTED"], descending=self.descending)
            if self.tags:
                want = set(self.tags)
                rows = [r for r in rows if want <= {t["name"] if isinstance(t, dict) else t
                                                    for t in values.loads(r.tags_raw or "[]")}]
            self._cache = [r.pk for r in rows]
        return self._cache

    def _fetch(self, offset: int, limit: int) -> list[Artifact]:
        with session_scope(self._api._engine) as s:
            pks = self._version_pks(s)[offset:offset + limit]
            return [artifact_from_row(self._api, s, self.entity, self.project,
                                      s.get(VersionRow, pk)) for pk in pks]

    def _count(self) -> int:
        with session_scope(self._api._engine) as s:
            return len(self._version_pks(s))

    def __repr__(self) -> str:
        return f"<ArtifactVersions {self.entity}/{self.project}/{self.collection_name}>"


class RunArtifacts(Paginator[Artifact]):
    """Artifact versions a run logged (``mode="logged"``) or used (``"used"``)."""

    def __init__(self, run: Run, mode: str = "logged", per_page: int = 100) -> None:
        super().__init__(per_page)
        if mode not in ("logged", "used"):
            raise ValueError(f"mode must be 'logged' or 'used', not {mode!r}")
        self.run = run
        self.mode = mode

    def _fetch(self, offset: int, limit: int) -> list[Artifact]:
        api = self.run._api
        api._project_pk(self.run.entity, self.run.project)
        direction = "output" if self.mode == "logged" else "input"
        with session_scope(api._engine) as s:
            rows = A.run_artifact_versions(s, self.run._pk, direction)[offset:offset + limit]
            return [artifact_from_row(api, s, self.run.entity, self.run.project, r) for r in rows]

    def _count(self) -> int:
        direction = "output" if self.mode == "logged" else "input"
        with session_scope(self.run._api._engine) as s:
            return len(A.run_artifact_versions(s, self.run._pk, direction))

    def __repr__(self) -> str:
        return f"<RunArtifacts {'/'.join(self.run.path)} {self.mode}>"


def find_artifact(api: Api, entity: str, project: str, name: str,
                  type_name: str | None = None) -> Artifact:
    """``api.artifact(name)`` resolved in the store.

    Raises:
        ValueError: no such version (or its type differs from ``type_name``).
    """
    pk = api._project_pk(entity, project)
    collection, alias = split_artifact_name(name)
    with session_scope(api._engine, f"reading artifact {entity}/{project}/{name}") as s:
        coll = A.get_collection(s, pk, collection)
        row = None if coll is None else A.resolve_alias(s, coll.pk, alias)
        if row is None or row.deleted_at is not None:
            raise ValueError(f"artifact membership {name!r} not found in {entity}/{project} "
                             f"(in the store{', offline' if api._offline else ''})")
        art = artifact_from_row(api, s, entity, project, row, name=name)
    if type_name is not None and art.type != type_name:
        raise ValueError(f"Expected artifact type {type_name}, got {art.type}")
    return art
