"""``Api``: the ``wandb.Api()`` surface answered from the local store.

::

    import wandb_mirror
    api = wandb_mirror.Api()                      # same calls as wandb.Api()
    runs = api.runs("team/proj", {"config.lr": {"$lt": 1e-3}}, order="-summary_metrics.acc")
    df = runs[0].history(keys=["loss"])

Reads go to the SQLite store; the network is used only as the staleness contract says (see
:mod:`wandb_mirror.api.freshness`): a project is refreshed incrementally by the sync worker
when it is older than ``max_age``, after :meth:`Api.flush`, or when it was never mirrored.
"""
from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from ..config import Settings, load_settings, prepare_db_location
from ..errors import NotMirroredError, OfflineError
from ..paths import PathDefaults, parse_artifact_path, parse_path, parse_project_path
from ..remote import GraphQLClient, Transport
from ..store.engine import session_scope
from ..store.models import Project as ProjectRow
from ..store.schema import open_store
from ..sync import SyncLease, options_from, sync_project
from ..sync.progress import NullProgress
from .artifacts import (
    Artifact,
    ArtifactCollection,
    ArtifactCollections,
    ArtifactType,
    ArtifactTypes,
    ArtifactVersions,
    _collection,
    find_artifact,
)
from .base import app_url
from .cache import GenerationCache, StoreGeneration
from .freshness import Freshness, db_file
from .projects import Project, Projects
from .reports import BetaReport, Reports
from .runs import Run, RunListCache, Runs, load_run
from .sweeps import Sweep, load_sweep
from .users import User

__all__ = ["API_MAX_RETRIES", "Api"]

API_MAX_RETRIES = 2
"""Retries of an interactive refresh (a sync run from the CLI uses ``[upstream] max_retries``):
an unreachable server should cost seconds, not minutes, before answering from the store."""

_UNSET: Any = object()
_VIEWER = "query Viewer { viewer { id entity username name email } }"


class Api:
    """The W&B public API over the local mirror.

    Args:
        overrides: as ``wandb.Api``: ``base_url``, ``entity``, ``project`` (other keys ignored).
        timeout: HTTP timeout in seconds for refreshes.
        api_key: the W&B key (default: ``WANDB_API_KEY``, netrc, config file).
        db: the store (path, SQLAlchemy URL or Engine; default ``[store] db``).
        max_age: seconds before mirrored data is refreshed on read (default ``[api] max_age``,
            15 minutes; None: only on :meth:`flush` or when never mirrored).
        offline: never touch the network (default ``[api] offline`` /
            ``WANDB_MIRROR_OFFLINE``).
        settings: a ready :class:`~wandb_mirror.config.Settings` (skips reading the
            environment and config file).
        clock: seconds since the epoch, for staleness (default ``time.time``).
        client: a ready GraphQL client (tests).
    """

    def __init__(
        self,
        overrides: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        api_key: str | None = None,
        *,
        db: str | Path | Engine | None = None,
        max_age: float | None = _UNSET,
        offline: bool | None = None,
        settings: Settings | None = None,
        clock: Callable[[], float] | None = None,
        client: GraphQLClient | None = None,
    ) -> None:
        over = dict(overrides or {})
        fields: dict[str, Any] = {k: over[k] for k in ("base_url", "entity", "project")
                                  if over.get(k)}
        if api_key:
            fields["api_key"] = api_key
        if timeout is not None:
            fields["timeout"] = float(timeout)
        if isinstance(db, (str, Path)):
            fields["db"] = str(db)
        if settings is None:
            # The user-facing entry point, like wandb.Api(): reads the real environment.
            settings = load_settings(**fields)
        elif fields:
            from dataclasses import replace

            settings = replace(settings, **{k: (str(v).rstrip("/") if k == "base_url" else v)
                                            for k, v in fields.items()})
        self._settings = settings
        self.settings: dict[str, Any] = {"base_url": settings.base_url,
                                         "entity": settings.entity,
                                         "project": settings.project, "organization": None}
        self.api_key = settings.api_key
        self._offline = bool(settings.offline if offline is None else offline)
        self._max_age = settings.max_age if max_age is _UNSET else max_age
        self._engine = open_store(db if isinstance(db, Engine)
                                  else prepare_db_location(settings.db))
        self._client_obj = client
        self._app_url = app_url(settings.base_url)
        self._default_entity: str | None = None
        self._run_lists = RunListCache(self._engine)
        self._results = GenerationCache(StoreGeneration(self._engine), max_entries=256)
        self._freshness = Freshness(self._engine, max_age=self._max_age, offline=self._offline,
                                    clock=clock or time.time, refresh=self._refresh,
                                    base_url=settings.base_url)

    # ------------------------------------------------------------------ plumbing

    @property
    def offline(self) -> bool:
        """Whether this Api never uses the network."""
        return self._offline

    @property
    def max_age(self) -> float | None:
        """Seconds mirrored data stays fresh (None: forever)."""
        return self._max_age

    @property
    def engine(self) -> Engine:
        """The store's engine."""
        return self._engine

    def _client(self) -> GraphQLClient:
        """The GraphQL client (created on first use).

        Raises:
            OfflineError: the Api is offline.
        """
        if self._offline:
            raise OfflineError("this Api is offline; it never uses the network")
        if self._client_obj is None:
            s = self._settings
            self._client_obj = GraphQLClient(Transport(
                s.base_url, s.api_key, timeout=(min(10.0, s.timeout), s.timeout),
                max_retries=min(s.max_retries, API_MAX_RETRIES), max_in_flight=s.max_in_flight))
        return self._client_obj

    def _refresh(self, entity: str, project: str) -> None:
        with SyncLease(db_file(self._engine), wait=0.0):
            sync_project(self._engine, self._client(), f"{entity}/{project}",
                         options_from(self._settings), NullProgress())

    def _project_pk(self, entity: str | None, project: str) -> int:
        return self._freshness.project(entity, project)

    def _defaults(self) -> PathDefaults:
        return PathDefaults(entity=self.settings.get("entity") or self.default_entity,
                            project=self.settings.get("project"))

    def flush(self) -> None:
        """Mark everything this Api has read as stale: the next read refreshes it (online)."""
        self._freshness.flush()

    def data_age(self, path: str | None = None) -> float | None:
        """(ours) Seconds since the project at ``path`` was last refreshed (None: never)."""
        entity, project = parse_project_path(path, self._defaults())
        return self._freshness.age(entity or "", project)

    # ------------------------------------------------------------------ identity

    @property
    def default_entity(self) -> str | None:
        """The default entity: ``WANDB_ENTITY``, else the only entity in the store, else (online)
        the viewer's entity."""
        if self._default_entity is None:
            entity = self.settings.get("entity")
            if not entity:
                with session_scope(self._engine) as s:
                    entities = list(s.scalars(select(ProjectRow.entity).distinct().limit(2)))
                if len(entities) == 1:
                    entity = entities[0]
            if not entity and not self._offline:
                try:
                    viewer = (self._client().execute(_VIEWER).get("viewer") or {})
                    entity = viewer.get("entity")
                except Exception:  # noqa: BLE001 - a default entity is best effort
                    entity = None
            self._default_entity = entity
        return self._default_entity

    @property
    def viewer(self) -> User:
        """The user the API key belongs to (online only).

        Raises:
            OfflineError: offline.
            ValueError: the server returned no viewer.
        """
        viewer = self._client().execute(_VIEWER).get("viewer")
        if not viewer:
            raise ValueError("Unable to fetch user data from W&B, please verify your API key")
        return User(viewer)

    def user_agent(self) -> str:
        from .. import __version__

        return f"wandb-mirror {__version__}"

    # ------------------------------------------------------------------ projects

    def projects(self, entity: str | None = None, per_page: int = 200) -> Projects:
        """The mirrored projects of ``entity`` (default entity when None).

        Raises:
            ValueError: no entity given and none configured.
        """
        entity = entity or self.settings.get("entity") or self.default_entity
        if entity is None:
            raise ValueError("entity must be passed as a parameter, or set in settings")
        return Projects(self, entity, per_page=per_page)

    def project(self, name: str, entity: str | None = None) -> Project:
        """A project (attributes read on first access)."""
        entity = entity or self.settings.get("entity") or self.default_entity
        return Project(self, entity or "", name)

    # ------------------------------------------------------------------ runs

    def runs(self, path: str | None = None, filters: Mapping[str, Any] | None = None,
             order: str = "+created_at", per_page: int = 50, include_sweeps: bool = False,
             lazy: bool = True) -> Runs:
        """Runs of ``entity/project`` matching a Mongo-style filter, in ``order``.

        Raises:
            FilterError: malformed filter or order.
        """
        # A full "entity/project" path needs no defaults (which may query the store).
        defaults = PathDefaults() if path and "/" in path else self._defaults()
        entity, project = parse_project_path(path, defaults)
        return Runs(self, entity or "", project, filters=filters, order=order,
                    per_page=per_page, include_sweeps=include_sweeps, lazy=lazy)

    def run(self, path: str = "") -> Run:
        """One run by ``entity/project/run_id`` (or the shorter forms wandb accepts).

        Raises:
            ValueError: bad path, or no such run in the store.
            OfflineError: offline and the project was never mirrored.
        """
        entity, project, run_id = parse_path(path, self._defaults())
        return load_run(self, entity, project, run_id)

    def sweep(self, path: str = "") -> Sweep:
        """One sweep by ``entity/project/sweep_id``.

        Raises:
            ValueError: bad path or no such sweep.
        """
        entity, project, sweep_id = parse_path(path, self._defaults())
        sweep = load_sweep(self, entity, project, sweep_id)
        if sweep is None:
            raise ValueError(f"Could not find sweep <Sweep {entity}/{project}/{sweep_id}> in "
                             "the store")
        return sweep

    def reports(self, path: str = "", name: str | None = None, per_page: int = 50) -> Reports:
        """Reports of a project (those named ``name`` when given)."""
        entity, project, _ = parse_path(path + "/fake_run", self._defaults())
        if name:
            name = urllib.parse.unquote(name)
        return Reports(self, entity, project, name=name, per_page=per_page)

    def from_path(self, path: str) -> Project | Run | Sweep | BetaReport:
        """A project, run, sweep or report from its path.

        Raises:
            ValueError: the path has no known form.
        """
        parts = path.strip("/ ").split("/")
        if len(parts) == 1:
            return self.project(path)
        if len(parts) == 2:
            return self.project(parts[1], parts[0])
        if len(parts) == 3:
            return self.run(path)
        if len(parts) == 4:
            if parts[2].startswith("run"):
                return self.run(path)
            if parts[2].startswith("sweep"):
                return self.sweep(path)
            if parts[2].startswith("report"):
                last = parts[-1] if "--" in parts[-1] else "--" + parts[-1]
                title, ident = last.split("--", 1)
                for report in self.reports(f"{parts[0]}/{parts[1]}"):
                    if report.id.replace("=", "") == ident.replace("=", ""):
                        return report
                return BetaReport(self, {"displayName": urllib.parse.unquote(
                    title.replace("-", " ")), "id": ident, "spec": "{}"}, parts[0], parts[1])
        raise ValueError("Invalid path, should be TEAM/PROJECT/TYPE/ID where TYPE is runs, "
                         "sweeps, or reports")

    # ------------------------------------------------------------------ artifacts

    def _artifact_project(self, project: str | None) -> tuple[str, str]:
        entity, name = parse_project_path(project, self._defaults())
        if not entity:
            raise ValueError("no entity: pass 'entity/project' or set WANDB_ENTITY")
        return entity, name

    def artifact(self, name: str, type: str | None = None) -> Artifact:
        """One artifact version: ``[entity/project/]collection:version_or_alias``.

        Raises:
            ValueError: no such version in the store, or a different type.
        """
        if name is None:
            raise ValueError("You must specify name= to fetch an artifact.")
        entity, project, art = parse_artifact_path(name, self._defaults())
        if not entity:
            raise ValueError(f"no entity in artifact path {name!r}; set WANDB_ENTITY")
        return find_artifact(self, entity, project, art, type)

    def artifact_exists(self, name: str, type: str | None = None) -> bool:
        """Whether the artifact version is in the store."""
        try:
            self.artifact(name, type)
        except (ValueError, NotMirroredError):
            return False
        return True

    def artifact_types(self, project: str | None = None) -> ArtifactTypes:
        """The artifact types of a project."""
        entity, name = self._artifact_project(project)
        return ArtifactTypes(self, entity, name)

    def artifact_type(self, type_name: str, project: str | None = None) -> ArtifactType:
        """One artifact type of a project.

        Raises:
            ValueError: no such type.
        """
        for t in self.artifact_types(project):
            if t.name == type_name:
                return t
        raise ValueError(f"artifact type {type_name!r} not found in {project}")

    def artifact_collections(self, project_name: str, type_name: str,
                             per_page: int = 50) -> ArtifactCollections:
        """The collections of one type in a project."""
        entity, name = self._artifact_project(project_name)
        return ArtifactCollections(self, entity, name, type_name, per_page=per_page)

    def artifact_collection(self, type_name: str, name: str) -> ArtifactCollection:
        """One collection by ``entity/project/collection``.

        Raises:
            ValueError: no such collection of that type.
        """
        entity, project, coll = parse_artifact_path(name, self._defaults())
        coll = coll.split(":")[0]
        pk = self._project_pk(entity, project)
        from ..store import artifacts as A

        with session_scope(self._engine) as s:
            row = A.get_collection(s, pk, coll)
            if row is not None:
                obj = _collection(self, s, entity or "", project, row)
                if obj.type == type_name:
                    return obj
        raise ValueError(f"Could not find artifact collection {entity}/{project}/{coll} of "
                         f"type {type_name!r}")

    def artifact_collection_exists(self, name: str, type: str) -> bool:
        """Whether the collection is in the store."""
        try:
            self.artifact_collection(type, name)
        except (ValueError, NotMirroredError):
            return False
        return True

    def artifacts(self, type_name: str, name: str, per_page: int = 50,
                  tags: list[str] | None = None) -> ArtifactVersions:
        """The committed versions of a collection ``entity/project/collection``, newest first."""
        entity, project, coll = parse_artifact_path(name, self._defaults())
        return ArtifactVersions(self, entity or "", project, coll.split(":")[0], type_name,
                                per_page=per_page, tags=tags)

    def artifact_versions(self, type_name: str, name: str, per_page: int = 50
                          ) -> ArtifactVersions:
        """Same as :meth:`artifacts` (upstream's deprecated name)."""
        return self.artifacts(type_name, name, per_page=per_page)

    def __repr__(self) -> str:
        mode = "offline" if self._offline else f"max_age={self._max_age}"
        return f"<wandb_mirror.Api {self._engine.url.database or self._engine.url} {mode}>"
