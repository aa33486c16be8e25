"""``QueryGenerator``: helpers between W&B's UI filter trees and Mongo-style run filters.

Same behaviour as ``wandb.apis.public.QueryGenerator`` (used by ``Sweep.best_run`` to turn a
metric name into an order key, and by reports to turn a run set's filters into a query).
"""
from __future__ import annotations

from typing import Any

__all__ = ["QueryGenerator"]


class QueryGenerator:
    """Converts between UI filter trees (``{"op": "AND", "filters": [...]}``) and Mongo filters."""

    INDIVIDUAL_OP_TO_MONGO = {"!=": "$ne", ">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte",
                              "IN": "$in", "NIN": "$nin", "REGEX": "$regex"}
    MONGO_TO_INDIVIDUAL_OP = {v: k for k, v in INDIVIDUAL_OP_TO_MONGO.items()}
    GROUP_OP_TO_MONGO = {"AND": "$and", "OR": "$or"}
    MONGO_TO_GROUP_OP = {v: k for k, v in GROUP_OP_TO_MONGO.items()}

    @classmethod
    def format_order_key(cls, key: str) -> str | None:
        """An order key for a metric name: default sign ``-``; a bare name other than
        ``createdAt``/``updatedAt``/``name``/``sweep`` becomes ``summary_metrics.<name>``; a
        dotted key with an unknown first part gets ``summary_metrics.`` prepended. As
        upstream, a bare ``createdAt``/``updatedAt``/``name``/``sweep`` gives None."""
        direction = "-"
        if key.startswith(("+", "-")):
            direction, key = key[0], key[1:]
        parts = key.split(".")
        if len(parts) == 1:
            if parts[0] not in ("createdAt", "updatedAt", "name", "sweep"):
                return direction + "summary_metrics." + parts[0]
            return None
        if parts[0] not in ("config", "summary_metrics", "tags"):
            return direction + ".".join(["summary_metrics", *parts])
        return direction + ".".join(parts)

    def key_to_server_path(self, key: dict[str, Any]) -> str:
        """``{"section": "config", "name": "lr"}`` -> ``"config.lr"``.

        Raises:
            ValueError: unknown section.
        """
        section, name = key["section"], key["name"]
        prefix = {"config": "config.", "summary": "summary_metrics.",
                  "keys_info": "keys_info.keys.", "run": "", "tags": "tags."}.get(section)
        if prefix is None:
            raise ValueError(f"Invalid key: {key}")
        return prefix + name

    def server_path_to_key(self, path: str) -> dict[str, str]:
        """Inverse of :meth:`key_to_server_path`."""
        for prefix, section in (("config.", "config"), ("summary_metrics.", "summary"),
                                ("keys_info.keys.", "keys_info"), ("tags.", "tags")):
            if path.startswith(prefix):
                return {"section": section, "name": path.split(prefix, 1)[1]}
        return {"section": "run", "name": path}

    def keys_to_order(self, keys: dict[str, Any]) -> list[str]:
        """Order strings of a UI sort spec ``{"keys": [{"key": ..., "ascending": bool}]}``."""
        return [("+" if k.get("ascending") else "-") + self.key_to_server_path(k["key"])
                for k in keys["keys"]]

    def order_to_keys(self, order: list[str]) -> dict[str, Any]:
        """Inverse of :meth:`keys_to_order` for run columns.

        Raises:
            ValueError: an order string without ``+``/``-``.
        """
        keys = []
        for k in order:
            if k[:1] not in ("+", "-"):
                raise ValueError("you must sort by ascending(+) or descending(-)")
            keys.append({"key": {"section": "run", "name": k[1:]}, "ascending": k[0] == "+"})
        return {"keys": keys}

    def _to_mongo_individual(self, filter: dict[str, Any]) -> Any:
        if filter["key"]["name"] == "":
            return None
        if filter.get("value") is None and filter["op"] not in ("=", "!="):
            return None
        if filter.get("disabled"):
            return None
        if filter["key"]["section"] == "tags":
            if filter["op"] == "IN":
                return {"tags": {"$in": filter["value"]}}
            if filter["value"] is False:
                return {"$or": [{"tags": None}, {"tags": {"$ne": filter["key"]["name"]}}]}
            return {"tags": filter["key"]["name"]}
        path = self.key_to_server_path(filter["key"])
        value = filter["value"] if filter["op"] == "=" else {
            self.INDIVIDUAL_OP_TO_MONGO[filter["op"]]: filter["value"]}
        return {path: value}

    def filter_to_mongo(self, filter: dict[str, Any]) -> Any:
        """A UI filter tree as a Mongo filter."""
        if filter.get("key") is not None:
            return self._to_mongo_individual(filter)
        if filter.get("filters") is not None:
            return {self.GROUP_OP_TO_MONGO[filter["op"]]:
                    [self.filter_to_mongo(f) for f in filter["filters"]]}
        return None

    def mongo_to_filter(self, filter: Any) -> Any:
        """A Mongo filter as a UI filter tree."""
        if filter is None:
            return None
        for key in filter:
            if key in self.MONGO_TO_GROUP_OP:
                return {"op": self.MONGO_TO_GROUP_OP[key],
                        "filters": [self.mongo_to_filter(f) for f in filter[key]]}
        for k, v in filter.items():
            if isinstance(v, dict):
                op = next(iter(v))
                return {"key": self.server_path_to_key(k), "op": self.MONGO_TO_INDIVIDUAL_OP[op],
                        "value": v[op]}
            return {"key": self.server_path_to_key(k), "op": "=", "value": v}
        return None
