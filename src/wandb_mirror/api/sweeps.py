"""``Sweep`` (and ``Sweeps``): a sweep's attributes, YAML config, runs and best run."""
from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

import yaml

from ..store import sweeps as store_sweeps
from ..store.engine import session_scope
from .base import Attrs, Paginator
from .query_generator import QueryGenerator
from .runs import Run, Runs

if TYPE_CHECKING:
    from .api import Api

__all__ = ["Sweep", "Sweeps", "load_sweep"]


class Sweep(Attrs):
    """A sweep.

    Attributes:
        id: the sweep id used in paths (GraphQL ``name``).
        runs: its runs (``Runs`` filtered on ``sweep``, ``+created_at``, 10 a page).
        config: the YAML config parsed.
        state, method, best_loss, created_at, updated_at, run_count ...: GraphQL fields.
    """

    def __init__(self, api: Api, entity: str, project: str, sweep_id: str,
                 attrs: dict[str, Any], order: str | None = None) -> None:
        super().__init__(attrs)
        self._api = api
        self._entity = entity
        self.project = project
        self.id = sweep_id
        self.runs = Runs(api, entity, project, filters={"$and": [{"sweep": sweep_id}]},
                         order=order or "+created_at", per_page=10)

    @property
    def entity(self) -> str:
        return self._entity

    @property
    def config(self) -> dict[str, Any]:
        """The sweep configuration (YAML parsed)."""
        raw = self._attrs.get("config")
        return (yaml.safe_load(raw) or {}) if raw else {}

    @property
    def order(self) -> str | None:
        """The order of the sweep's metric goal (``+summary_metrics.<m>`` to minimize)."""
        metric = self.config.get("metric") if self._attrs.get("config") else None
        if metric:
            prefix = "+" if metric.get("goal", "minimize") == "minimize" else "-"
            return QueryGenerator.format_order_key(prefix + metric["name"])
        return None

    def best_run(self, order: str | None = None) -> Run | None:
        """The best run by ``order`` or by the config's metric goal (None without runs)."""
        order = self.order if order is None else QueryGenerator.format_order_key(order)
        runs = Runs(self._api, self.entity, self.project,
                    filters={"$and": [{"sweep": self.id}]}, order=order, per_page=1)
        try:
            return runs[0]
        except IndexError:
            return None

    @property
    def expected_run_count(self) -> int | None:
        return self._attrs.get("runCountExpected")

    @property
    def path(self) -> list[str]:
        return [urllib.parse.quote_plus(p) for p in (self.entity, self.project, self.id)]

    @property
    def url(self) -> str:
        path = self.path
        path.insert(2, "sweeps")
        return self._api._app_url + "/" + "/".join(path)

    @property
    def name(self) -> str:
        """Display name, else the config's ``name``, else the id."""
        return self._attrs.get("displayName") or self.config.get("name") or self.id

    def __repr__(self) -> str:
        return f"<Sweep {'/'.join(self.path)} ({self._attrs.get('state', 'Unknown State')})>"


def load_sweep(api: Api, entity: str, project: str, sweep_id: str,
               order: str | None = None) -> Sweep | None:
    """A sweep from the store (after the freshness check), None when absent."""
    pk = api._project_pk(entity, project)
    with session_scope(api._engine, f"reading sweep {entity}/{project}/{sweep_id}") as s:
        row = store_sweeps.get_sweep(s, pk, sweep_id)
        if row is None or row.deleted_at is not None:
            return None
        node = store_sweeps.sweep_node(row)
    return Sweep(api, entity, project, sweep_id, node, order=order)


class Sweeps(Paginator[Sweep]):
    """A project's sweeps, oldest first."""

    def __init__(self, api: Api, entity: str, project: str, per_page: int = 50) -> None:
        super().__init__(per_page)
        self._api = api
        self.entity = entity
        self.project = project

    def _fetch(self, offset: int, limit: int) -> list[Sweep]:
        pk = self._api._project_pk(self.entity, self.project)
        with session_scope(self._api._engine) as s:
            rows = store_sweeps.list_sweeps(s, pk, limit=limit, offset=offset)
            nodes = [store_sweeps.sweep_node(r) for r in rows]
        return [Sweep(self._api, self.entity, self.project, n["name"], n) for n in nodes]

    def _count(self) -> int:
        pk = self._api._project_pk(self.entity, self.project)
        with session_scope(self._api._engine) as s:
            return store_sweeps.count_sweeps(s, pk)

    def __repr__(self) -> str:
        return f"<Sweeps {self.entity}/{self.project}>"
