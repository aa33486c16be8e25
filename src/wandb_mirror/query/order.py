"""W&B order strings (``"+created_at"``, ``"-summary_metrics.loss"``) to ORDER BY clauses.

Rules (``reference/wandb-protocol.md`` §4.2, plus what upstream leaves unsaid):

- ``+key`` ascending, ``-key`` descending, an unsigned key **descending** (as upstream's server);
  None or ``""`` means ``+created_at``. A list of keys sorts by each in turn (upstream takes one).
- Keys are the filter keys of :mod:`.keys` (all spellings): ``created_at``, ``heartbeat_at``,
  ``updated_at``, ``display_name``, ``name``, ``state``, ``config.<k>(.value)``,
  ``summary_metrics.<k>``, other run columns.
- Runs whose value is missing, null **or NaN** sort last in both directions (upstream's order
  for NaN is unverified; MongoDB would put NaN first ascending, so ``best_run()`` of a
  minimising sweep would pick a diverged run).
- Values of different types sort by type class in MongoDB's BSON order — numbers < strings <
  objects < arrays < booleans < timestamps — reversed as a whole for descending; arrays and
  objects sort by their canonical JSON text (not Mongo's
  element-wise array rule).
- Ties (and the end of every order) are broken by ``created_ts`` ascending, then ``Run.pk``, so
  paging is deterministic.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select

from ..errors import FilterError
from ..store import values as V
from .keys import KeySpec, resolve_key
from .sql import RUNS, RUN_VALUES, sort_value

__all__ = ["DEFAULT_ORDER", "compile_order", "parse_order"]

DEFAULT_ORDER = "+created_at"
MAX_ORDER_KEYS = 8

TYPE_RANK = {V.NUMBER: 1, V.STRING: 2, V.OBJECT: 3, V.ARRAY: 4, V.BOOL: 5, V.DATE: 6}


def parse_order(order: str | Sequence[str] | None) -> list[tuple[KeySpec, bool]]:
    """Parse an order string or list into ``(key spec, ascending)`` pairs.

    Raises:
        FilterError: not a string/list of strings, empty key, unknown key (path ``$order``).
    """
    if order is None or order == "" or (isinstance(order, (list, tuple)) and not order):
        order = DEFAULT_ORDER
    if isinstance(order, str):
        items: list[tuple[Any, str]] = [(order, "$order")]
    elif isinstance(order, (list, tuple)):
        if len(order) > MAX_ORDER_KEYS:
            raise FilterError(f"at most {MAX_ORDER_KEYS} order keys are allowed", "$order")
        items = [(o, f"$order[{i}]") for i, o in enumerate(order)]
    else:
        raise FilterError(f"order must be a string or a list of strings, not "
                          f"{type(order).__name__}", "$order")
    out = []
    for text, where in items:
        if not isinstance(text, str):
            raise FilterError(f"an order key must be a string, not {type(text).__name__}", where)
        text = text.strip()
        ascending = False  # unsigned means descending, as upstream
        if text[:1] in ("+", "-"):
            ascending = text[0] == "+"
            text = text[1:].strip()
        if not text:
            raise FilterError("empty order key; use e.g. '+created_at'", where)
        out.append((resolve_key(text, where), ascending))
    return out


def value_lookup(spec: KeySpec, expr: Any) -> Any:
    """``expr`` of the run's value row for ``spec``: its first ``elem = 0`` row in the covering
    index's (kind, num, txt, id) order (a key can have two rows: a dotted key and a nested one
    share a path). The explicit ORDER BY costs nothing (the index is in that order) and pins
    the row that ``runs.first_run_pks`` also picks."""
    rv = RUN_VALUES.c
    if len(spec.paths) == 1:
        return (select(expr)
                .where(rv.run_pk == RUNS.c.pk, rv.root == spec.root, rv.path == spec.paths[0],
                       rv.elem == 0)
                .order_by(rv.kind, rv.num, rv.txt, rv.id)
                .limit(1)
                .scalar_subquery())
    return (select(expr)
            .where(rv.run_pk == RUNS.c.pk, rv.root == spec.root, rv.path.in_(spec.paths),
                   rv.elem == 0)
            .limit(1)
            .scalar_subquery())


def rank_of(rv: Any) -> Any:
    """Type-class rank of a ``run_values`` row; NULL for null and NaN values.

    NaN is spelled ``kind = NUMBER AND num IS NULL`` (exactly the rows with ``nan = 1``: see
    ``store.values.scalar_fields``) so the lookup reads the covering index alone."""
    return case((and_(rv.kind == V.NUMBER, rv.num.is_(None)), None),
                else_=case(TYPE_RANK, value=rv.kind, else_=None))


def key_clauses(spec: KeySpec, ascending: bool) -> list[ColumnElement[Any]]:
    """ORDER BY clauses for one key (missing/null last in both directions)."""
    col = spec.order_column
    if col is not None:
        return [col.is_(None), col.asc() if ascending else col.desc()]
    # NaN ranks like a missing value, so diverged runs sort last both ways (best_run never
    # picks one); other values rank by their type class.
    rank = value_lookup(spec, rank_of(RUN_VALUES.c))
    value = value_lookup(spec, sort_value(RUN_VALUES.c))
    if ascending:
        return [func.coalesce(rank, 99).asc(), value.asc().nulls_first()]
    return [func.coalesce(rank, -1).desc(), value.desc().nulls_last()]


TIE_BREAK = (RUNS.c.created_ts.is_(None), RUNS.c.created_ts.asc(), RUNS.c.pk.asc())


def compile_order(order: str | Sequence[str] | None = None) -> list[ColumnElement[Any]]:
    """Compile a W&B order string (or list of them) to ORDER BY clauses over ``Run``.

    Args:
        order: ``"+created_at"`` (default), ``"-summary_metrics.loss"``, ``"config.lr.value"``
            (unsigned = descending), or a list of such keys.

    Returns:
        Clauses over the ``runs`` table for ``select(Run).order_by(*clauses)``, ending with
        the tie-break.

    Raises:
        FilterError: malformed order (path ``$order`` or ``$order[i]``).
    """
    clauses: list[ColumnElement[Any]] = []
    for spec, ascending in parse_order(order):
        clauses.extend(key_clauses(spec, ascending))
    clauses.extend(TIE_BREAK)
    return clauses
