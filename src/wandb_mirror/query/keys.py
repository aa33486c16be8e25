"""The one table of W&B filter/order keys: spellings, aliases and where each value lives.

Every place that accepts a run key (the filter compiler, the order parser, the GraphQL server,
the api layer) resolves it here, so ``display_name`` and ``displayName`` can never mean two
different things in two modules.

Key space (``reference/wandb-protocol.md`` §4):

- ``config.<k>`` and ``config.<k>.value``: the *unwrapped* config value, nested further with
  dots. A ``value`` segment after the first config segment may be dropped, so both spellings
  address the same value; a key whose own name contains dots (``"opt.lr"``) is addressed by
  ``config.opt.lr`` exactly like a nested ``{"opt": {"lr": ...}}`` (the value index stores
  both under the dotted path ``opt.lr``).
- ``summary_metrics.<k>``: the summary, nested with dots. ``summary.<k>`` is *not* accepted:
  upstream's server resolves ``summary_metrics`` only (an old docstring's ``summary.*`` is prose).
- Run columns with their camelCase and snake_case spellings, see :data:`RUN_COLUMNS`.

Sweeps and artifact versions are filtered on plain table columns; their key maps are
:data:`SWEEP_COLUMNS` and :data:`ARTIFACT_VERSION_COLUMNS`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Column
from sqlalchemy.orm import InstrumentedAttribute

from ..errors import FilterError
from ..store import values as V
from ..store.models import ArtifactVersion, Run, Sweep

__all__ = [
    "ARTIFACT_VERSION_COLUMNS", "CONFIG_PREFIX", "ColumnKey", "KeySpec", "RUN_COLUMNS",
    "RunColumn", "SUMMARY_PREFIX", "SWEEP_COLUMNS", "column_key", "resolve_key", "valid_keys_text",
]

CONFIG_PREFIX = "config."
SUMMARY_PREFIX = "summary_metrics."


@dataclass(frozen=True)
class RunColumn:
    """A run column as filters and orders address it.

    Attributes:
        canonical: the ``run_values`` path (root RUN) and the GraphQL field name.
        aliases: every accepted spelling (the canonical one included).
        order_attr: the ``Run`` attribute used for ORDER BY, or None to order via ``run_values``.
        timestamp: values are ISO-8601 timestamps compared chronologically.
        direct: the ``order_attr`` column holds exactly the indexed value (a string or null),
            so filters may read the ``runs`` table instead of ``run_values`` (faster).
    """

    canonical: str
    aliases: tuple[str, ...]
    order_attr: str | None = None
    timestamp: bool = False
    direct: bool = False


RUN_COLUMNS: tuple[RunColumn, ...] = (
    RunColumn("name", ("name",), "run_id", direct=True),
    RunColumn("displayName", ("displayName", "display_name"), "display_name", direct=True),
    RunColumn("state", ("state",), "state", direct=True),
    RunColumn("tags", ("tags",)),
    RunColumn("createdAt", ("createdAt", "created_at"), "created_ts", timestamp=True),
    RunColumn("heartbeatAt", ("heartbeatAt", "heartbeat_at"), "heartbeat_ts", timestamp=True),
    RunColumn("updatedAt", ("updatedAt", "updated_at"), "updated_ts", timestamp=True),
    RunColumn("group", ("group",), "group", direct=True),
    RunColumn("jobType", ("jobType", "job_type"), "job_type", direct=True),
    RunColumn("username", ("username",)),
    RunColumn("sweep", ("sweep",), "sweep_name", direct=True),
    RunColumn("notes", ("notes",), "notes", direct=True),
    RunColumn("host", ("host",), "host", direct=True),
    RunColumn("duration", ("duration",)),
)
"""Run columns; every canonical name is a ``run_values`` path written by ``store.runs``."""

_BY_ALIAS: dict[str, RunColumn] = {a: col for col in RUN_COLUMNS for a in col.aliases}
assert set(c.canonical for c in RUN_COLUMNS) <= set(_BY_ALIAS)
assert {c.canonical for c in RUN_COLUMNS if c.timestamp} == set(V.TIMESTAMP_PATHS)


@dataclass(frozen=True)
class KeySpec:
    """Where a run key's values live in ``run_values``.

    Attributes:
        key: the key as the user wrote it.
        root: :data:`values.CONFIG`, :data:`values.SUMMARY` or :data:`values.RUN`.
        paths: candidate dotted paths; a value at any of them is the key's value (more than one
            only for ``config.<k>.value`` spellings).
        timestamp: operands are ISO-8601 strings compared chronologically.
        order_attr: ``Run`` attribute to order by, or None (order through ``run_values``).
        direct: filters may read ``order_attr`` on ``runs`` (a string-or-null column).
    """

    key: str
    root: int
    paths: tuple[str, ...]
    timestamp: bool = False
    order_attr: str | None = None
    direct: bool = False

    @property
    def order_column(self) -> Column[Any] | None:
        """The ``runs`` table column used for ORDER BY, when the key has one.

        A table column, not the ORM attribute: statements built from table columns compile
        and run without configuring the ORM mappers (tens of ms on a process's first query).
        """
        return Run.__mapper__.columns[self.order_attr] if self.order_attr else None


def valid_keys_text() -> str:
    """Human list of accepted run keys, for error messages."""
    names = []
    for col in RUN_COLUMNS:
        names.append(col.canonical if len(col.aliases) == 1
                     else f"{col.canonical} ({', '.join(a for a in col.aliases if a != col.canonical)})")
    return "config.<key>, config.<key>.value, summary_metrics.<key>, " + ", ".join(names)


def _segments(rest: str, key: str, where: str) -> list[str]:
    segs = rest.split(".")
    if not rest or any(s == "" for s in segs):
        raise FilterError(f"key {key!r} has an empty path segment", where)
    return segs


def resolve_key(key: str, where: str = "$") -> KeySpec:
    """Resolve a W&B run key to where its values live.

    Args:
        key: ``config.lr``, ``config.lr.value``, ``summary_metrics.loss``, ``display_name``...
        where: JSON path of the key in the filter, for error messages.

    Raises:
        FilterError: the key is not a string, is empty, or is not a known key.
    """
    if not isinstance(key, str):
        raise FilterError(f"a key must be a string, not {type(key).__name__}", where)
    if key.startswith(CONFIG_PREFIX):
        segs = _segments(key[len(CONFIG_PREFIX):], key, where)
        paths = [".".join(segs)]
        for i in range(1, len(segs)):
            if segs[i] == "value":
                cand = ".".join(segs[:i] + segs[i + 1:])
                if cand not in paths:
                    paths.append(cand)
        return KeySpec(key, V.CONFIG, tuple(paths))
    if key.startswith(SUMMARY_PREFIX):
        segs = _segments(key[len(SUMMARY_PREFIX):], key, where)
        return KeySpec(key, V.SUMMARY, (".".join(segs),))
    col = _BY_ALIAS.get(key)
    if col is not None:
        return KeySpec(key, V.RUN, (col.canonical,), col.timestamp, col.order_attr, col.direct)
    hint = ""
    if key.startswith("summary."):
        hint = f" (did you mean {SUMMARY_PREFIX}{key[len('summary.'):]}?)"
    elif key in ("config", "summary_metrics"):
        hint = f" (name a key inside it, e.g. {key}.lr)"
    raise FilterError(f"unknown key {key!r}{hint}; valid keys: {valid_keys_text()}", where)


# --------------------------------------------------------------------------- plain columns

ColumnKind = Literal["string", "number", "bool", "timestamp"]


@dataclass(frozen=True)
class ColumnKey:
    """A key of a plain-column filter (sweeps, artifact versions).

    Attributes:
        column: the ORM column.
        kind: the Mongo type class of its values; ``timestamp`` columns hold ISO-8601 text and
            compare chronologically at millisecond resolution.
    """

    column: InstrumentedAttribute[Any] | Column[Any]
    kind: ColumnKind


def _aliased(table: Mapping[str, tuple[tuple[str, ...], InstrumentedAttribute[Any], ColumnKind]]
             ) -> dict[str, ColumnKey]:
    out: dict[str, ColumnKey] = {}
    for _name, (aliases, column, kind) in table.items():
        for alias in aliases:
            out[alias] = ColumnKey(column, kind)
    return out


SWEEP_COLUMNS: dict[str, ColumnKey] = _aliased({
    "name": (("name",), Sweep.name, "string"),
    "displayName": (("displayName", "display_name"), Sweep.display_name, "string"),
    "state": (("state",), Sweep.state, "string"),
    "method": (("method",), Sweep.method, "string"),
    "description": (("description",), Sweep.description, "string"),
    "bestLoss": (("bestLoss", "best_loss"), Sweep.best_loss, "number"),
    "runCount": (("runCount", "run_count"), Sweep.run_count, "number"),
    "runCountExpected": (("runCountExpected", "run_count_expected"), Sweep.run_count_expected,
                         "number"),
    "createdAt": (("createdAt", "created_at"), Sweep.created_at, "timestamp"),
    "updatedAt": (("updatedAt", "updated_at"), Sweep.updated_at, "timestamp"),
})
"""Filter keys of ``project.sweeps(filters=...)``."""

ARTIFACT_VERSION_COLUMNS: dict[str, ColumnKey] = _aliased({
    "state": (("state",), ArtifactVersion.state, "string"),
    "versionIndex": (("versionIndex", "version_index"), ArtifactVersion.version_index, "number"),
    "digest": (("digest",), ArtifactVersion.digest, "string"),
    "size": (("size",), ArtifactVersion.size, "number"),
    "fileCount": (("fileCount", "file_count"), ArtifactVersion.file_count, "number"),
    "commitHash": (("commitHash", "commit_hash"), ArtifactVersion.commit_hash, "string"),
    "description": (("description",), ArtifactVersion.description, "string"),
    "historyStep": (("historyStep", "history_step"), ArtifactVersion.history_step, "number"),
    "createdAt": (("createdAt", "created_at"), ArtifactVersion.created_at, "timestamp"),
    "updatedAt": (("updatedAt", "updated_at"), ArtifactVersion.updated_at, "timestamp"),
})
"""Filter keys of ``artifacts(..., filters=...)`` (upstream's default is ``{"state": "COMMITTED"}``)."""


def column_key(columns: Mapping[str, ColumnKey], key: str, where: str = "$") -> ColumnKey:
    """Resolve ``key`` in a plain-column key map.

    Raises:
        FilterError: unknown key (the message lists the valid ones).
    """
    if isinstance(key, str) and key in columns:
        return columns[key]
    raise FilterError(f"unknown key {key!r}; valid keys: {', '.join(sorted(columns))}", where)
