"""``Reports`` and ``BetaReport``: a project's reports with their parsed spec."""
from __future__ import annotations

import re
import urllib.parse
from typing import TYPE_CHECKING, Any

from ..store import reports as store_reports
from ..store import values
from ..store.engine import session_scope
from ..store.models import User as UserRow
from .base import Attrs, Paginator
from .query_generator import QueryGenerator
from .runs import Runs

if TYPE_CHECKING:
    from .api import Api

__all__ = ["BetaReport", "Reports"]


class BetaReport(Attrs):
    """A report.

    Attributes:
        id, name, display_name, description, created_at, updated_at: GraphQL fields.
        user: the author as the GraphQL object (``{"username", "photoUrl", "email"}``).
        spec: the parsed JSON spec; ``sections`` its ``panelGroups``.
    """

    def __init__(self, api: Api, attrs: dict[str, Any], entity: str, project: str) -> None:
        super().__init__(attrs)
        self._api = api
        self.entity = entity
        self.project = project
        self.query_generator = QueryGenerator()
        spec = self._attrs.get("spec")
        if isinstance(spec, str):
            self._attrs["spec"] = values.loads(spec)
        elif spec is None:
            self._attrs["spec"] = {}

    @property
    def spec(self) -> dict[str, Any]:
        return self._attrs["spec"]

    @property
    def sections(self) -> Any:
        return self.spec["panelGroups"]

    @property
    def id(self) -> str:
        return self._attrs["id"]

    @property
    def name(self) -> str | None:
        return self._attrs.get("name")

    @property
    def display_name(self) -> str | None:
        return self._attrs.get("displayName")

    @property
    def description(self) -> str | None:
        return self._attrs.get("description")

    @property
    def user(self) -> Any:
        return self._attrs.get("user")

    @property
    def updated_at(self) -> str | None:
        return self._attrs.get("updatedAt")

    @property
    def created_at(self) -> str | None:
        return self._attrs.get("createdAt")

    @property
    def url(self) -> str | None:
        """``<app>/<entity>/<project>/reports/<title-slug>--<id>``."""
        if not (self.entity and self.project and self.display_name and self.id):
            return None
        slug = urllib.parse.quote(re.sub(r"-+", "-", re.sub(r"\W", "-", self.display_name))
                                  .strip("-"))
        return self._api._app_url + "/" + "/".join(
            [self.entity, self.project, "reports", "--".join([slug, self.id.replace("=", "")])])

    def runs(self, section: dict[str, Any], per_page: int = 50, only_selected: bool = True
             ) -> Runs:
        """The runs of a section's first run set (its filters and sort)."""
        run_set = section["runSets"][0]
        order = "+created_at"
        if run_set.get("sort"):
            order = self.query_generator.keys_to_order(run_set["sort"])[0]
        filters = self.query_generator.filter_to_mongo(run_set.get("filters") or {}) or {}
        if only_selected and run_set.get("selections", {}).get("tree"):
            filters = {"$and": [filters, {"name": {"$in": run_set["selections"]["tree"]}}]}
        return Runs(self._api, self.entity, self.project, filters=filters, order=order,
                    per_page=per_page)

    def __repr__(self) -> str:
        return f"<BetaReport {self.name or self.display_name} ({self.id})>"


class Reports(Paginator[BetaReport]):
    """A project's reports (optionally those named ``name``), oldest first."""

    def __init__(self, api: Api, entity: str, project: str, name: str | None = None,
                 per_page: int = 50) -> None:
        super().__init__(per_page)
        self._api = api
        self.entity = entity
        self.project = project
        self.name = name

    def _fetch(self, offset: int, limit: int) -> list[BetaReport]:
        pk = self._api._project_pk(self.entity, self.project)
        with session_scope(self._api._engine, f"listing reports of {self.entity}/"
                                              f"{self.project}") as s:
            rows = store_reports.list_reports(s, pk, name=self.name, limit=limit, offset=offset)
            nodes = [store_reports.report_node(r, s.get(UserRow, r.user_pk)
                                               if r.user_pk is not None else None) for r in rows]
        return [BetaReport(self._api, n, self.entity, self.project) for n in nodes]

    def _count(self) -> None:  # type: ignore[override]
        return None  # upstream has no count either: len() loads every page

    def __repr__(self) -> str:
        return f"<Reports {self.entity}/{self.project}>"
