"""Public entry points: a W&B (Mongo-style) filter dict to a SQLAlchemy WHERE expression.

Semantics are MongoDB's as ``DESIGN.md`` ("Filter semantics") spells them out; see
``docs/filters.md`` for the user-facing reference. Filters are parsed and validated first
(:mod:`.parse`), then compiled (:mod:`.sql`); values are always bound parameters and key
paths are bound values too, never spliced into SQL text.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement

from .keys import ColumnKey, KeySpec, column_key, resolve_key
from .parse import Node, parse_filter
from .sql import ColumnBackend, RunValuesBackend, compile_node

__all__ = ["compile_column_filter", "compile_run_filter", "parse_column_filter",
           "parse_run_filter"]


def parse_run_filter(filters: Mapping[str, Any] | None) -> Node:
    """Validate a run filter and return its parsed tree.

    Raises:
        FilterError: malformed filter; ``.path`` names the offending node.
    """
    return parse_filter(filters, resolve_key, lambda spec: isinstance(spec, KeySpec)
                        and spec.timestamp)


def compile_run_filter(filters: Mapping[str, Any] | None, *,
                       correlated: bool = False) -> ColumnElement[bool]:
    """Compile a W&B run filter to a boolean expression over ``Run`` (correlated on ``Run.pk``).

    Args:
        filters: e.g. ``{"state": "finished", "config.lr": {"$gt": 0.01}}``; None or ``{}``
            match every run.
        correlated: answer each ``run_values`` leaf with a correlated ``EXISTS`` probe per run
            instead of one uncorrelated ``IN`` list (same result; cheaper when few runs are
            examined, dearer when all are).

    Returns:
        An expression to put in ``select(Run).where(...)``.

    Raises:
        FilterError: malformed filter (unknown key or operator, wrong operand type, invalid
            regex, too deep, too large); ``.path`` names the offending node.
    """
    return compile_node(parse_run_filter(filters), RunValuesBackend(correlated=correlated))


def parse_column_filter(filters: Mapping[str, Any] | None,
                        columns: Mapping[str, ColumnKey]) -> Node:
    """Validate a filter over plain columns (see :func:`compile_column_filter`)."""
    return parse_filter(filters, lambda key, where: column_key(columns, key, where),
                        lambda target: target.kind == "timestamp")


def compile_column_filter(filters: Mapping[str, Any] | None,
                          columns: Mapping[str, ColumnKey]) -> ColumnElement[bool]:
    """Compile a filter over plain table columns (sweeps, artifact versions).

    Same operators and semantics as run filters, over scalar columns: a NULL column counts as
    missing, a type-mismatched operand matches nothing (``$ne`` of it matches everything),
    timestamp columns compare chronologically at millisecond resolution.

    Args:
        filters: e.g. ``{"state": "COMMITTED"}``.
        columns: the key map, e.g. :data:`~.keys.SWEEP_COLUMNS`,
            :data:`~.keys.ARTIFACT_VERSION_COLUMNS`, or your own ``{key: ColumnKey}``.

    Raises:
        FilterError: malformed filter or unknown key.
    """
    return compile_node(parse_column_filter(filters, columns), ColumnBackend())
