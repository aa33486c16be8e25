"""Query layer: W&B Mongo-style run filters and order strings compiled to SQL.

See ``docs/filters.md`` for the language and ``DESIGN.md`` ("Filter semantics") for the rules.
"""
from __future__ import annotations

from .filters import (
    compile_column_filter,
    compile_run_filter,
    parse_column_filter,
    parse_run_filter,
)
from .keys import (
    ARTIFACT_VERSION_COLUMNS,
    RUN_COLUMNS,
    SWEEP_COLUMNS,
    ColumnKey,
    KeySpec,
    RunColumn,
    resolve_key,
)
from .order import DEFAULT_ORDER, compile_order, parse_order
from .runs import count_runs, first_run_pks, run_pks_statement, runs_statement, select_runs

__all__ = [
    "ARTIFACT_VERSION_COLUMNS",
    "ColumnKey",
    "DEFAULT_ORDER",
    "KeySpec",
    "RUN_COLUMNS",
    "RunColumn",
    "SWEEP_COLUMNS",
    "compile_column_filter",
    "compile_order",
    "compile_run_filter",
    "count_runs",
    "first_run_pks",
    "parse_column_filter",
    "parse_order",
    "parse_run_filter",
    "resolve_key",
    "run_pks_statement",
    "runs_statement",
    "select_runs",
]
