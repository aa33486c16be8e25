"""``Projects`` and ``Project``: the projects of an entity that are in the store."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..store.engine import session_scope
from ..store.models import Project as ProjectRow
from ..store.models import User as UserRow
from .base import Attrs, Paginator
from .users import User, user_attrs

if TYPE_CHECKING:
    from .api import Api
    from .artifacts import ArtifactCollections, ArtifactTypes
    from .sweeps import Sweeps

__all__ = ["Project", "Projects", "project_attrs"]


def project_attrs(row: ProjectRow, owner: UserRow | None) -> dict[str, Any]:
    """The GraphQL ``ProjectFragment`` of a stored project."""
    return {"__typename": "Project", "id": row.upstream_id, "name": row.name,
            "entityName": row.entity, "createdAt": row.created_at,
            "isBenchmark": bool(row.is_benchmark), "user": user_attrs(owner),
            "internalId": row.internal_id, "readOnly": row.read_only}


class Project(Attrs):
    """A project: ``name``, ``entity``, ``id``, ``created_at``, ``is_benchmark``, ``owner``,
    ``path``, ``url``; ``sweeps()``, ``artifacts_types()``, ``collections()``.

    Attributes are read from the store on first access (refreshing it if stale)."""

    def __init__(self, api: Api, entity: str, project: str,
                 attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs or {})
        self._api = api
        self.entity = entity
        self.name = project
        self._loaded = bool(attrs)

    def _load(self) -> None:
        if self._loaded:
            return
        pk = self._api._project_pk(self.entity, self.name)
        with session_scope(self._api._engine) as s:
            row = s.get(ProjectRow, pk)
            owner = s.get(UserRow, row.owner_pk) if row and row.owner_pk else None
            self._attrs = project_attrs(row, owner)
        self._loaded = True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        self._load()
        return super().__getattr__(name)

    @property
    def id(self) -> str | None:
        self._load()
        return self._attrs.get("id")

    @property
    def owner(self) -> User | None:
        self._load()
        user = self._attrs.get("user")
        return User(user) if user else None

    @property
    def path(self) -> list[str]:
        return [self.entity, self.name]

    @property
    def url(self) -> str:
        return self._api._app_url + "/" + "/".join([*self.path, "workspace"])

    def sweeps(self, per_page: int = 50) -> Sweeps:
        """The project's sweeps."""
        from .sweeps import Sweeps

        return Sweeps(self._api, self.entity, self.name, per_page=per_page)

    def artifacts_types(self, per_page: int = 50) -> ArtifactTypes:
        """The project's artifact types."""
        return self._api.artifact_types(f"{self.entity}/{self.name}")

    def collections(self, per_page: int = 50) -> ArtifactCollections:
        """Every artifact collection of the project."""
        from .artifacts import ArtifactCollections

        return ArtifactCollections(self._api, self.entity, self.name, None, per_page=per_page)

    def __repr__(self) -> str:
        return f"<Project {self.entity}/{self.name}>"


class Projects(Paginator[Project]):
    """The projects of an entity **that are in the store** (upstream lists every project)."""

    def __init__(self, api: Api, entity: str, per_page: int = 200) -> None:
        super().__init__(per_page)
        self._api = api
        self.entity = entity

    def _fetch(self, offset: int, limit: int) -> list[Project]:
        with session_scope(self._api._engine) as s:
            rows = list(s.scalars(select(ProjectRow).where(ProjectRow.entity == self.entity)
                                  .order_by(ProjectRow.created_at, ProjectRow.name)
                                  .offset(offset).limit(limit)))
            out = []
            for row in rows:
                owner = s.get(UserRow, row.owner_pk) if row.owner_pk else None
                out.append(Project(self._api, row.entity, row.name, project_attrs(row, owner)))
        return out

    def _count(self) -> None:  # type: ignore[override]
        return None

    def __repr__(self) -> str:
        return f"<Projects {self.entity}>"
