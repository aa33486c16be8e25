"""The filter compiler's pieces spelled as SQLite text, for a process's first query.

:mod:`.sql` writes each filter leaf once, against a small vocabulary (``and_``, ``or_``,
``not_``, ``true``, ``false``, ``func``, columns with ``==``/``<``/``in_``/``is_``..., and the
two ``run_values`` probes). :data:`CORE` in :mod:`.sql` answers that vocabulary with
SQLAlchemy Core (every dialect); :data:`TEXT` here answers it with :class:`Frag`, SQL text plus
its ``?`` parameters in order. Same compiler, same leaves, two spellings.

Why: SQLAlchemy builds, cache-keys and compiles a statement the first time a process meets
it, ~5 ms for a three-clause filter and a summary order -- a quarter of a fresh notebook's
first ``api.runs()`` page. Concatenating strings costs a few hundred microseconds. Values are
still bound parameters and identifiers come from the table definitions only.

``tests/test_query_text.py`` runs every filter of the query test corpus both ways and requires
the same runs.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..store.models import Run, RunValue

__all__ = ["FALSE", "Frag", "TEXT", "TRUE", "column", "join_and"]


class Frag:
    """A piece of SQLite text and its positional (``?``) parameters, in textual order.

    Comparison operators build comparisons (as SQLAlchemy columns do); a Frag has no truth
    value, so a stray ``if frag`` fails loudly instead of testing the wrong thing.
    """

    __slots__ = ("sql", "params")

    def __init__(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.sql = sql
        self.params = params

    def __repr__(self) -> str:
        return f"Frag({self.sql!r}, {self.params!r})"

    def __bool__(self) -> bool:
        raise TypeError("a SQL fragment has no truth value")

    def _binary(self, op: str, other: Any) -> Frag:
        o = other if isinstance(other, Frag) else Frag("?", (other,))
        return Frag(f"{self.sql} {op} {o.sql}", self.params + o.params)

    def __eq__(self, other: Any) -> Frag:  # type: ignore[override]
        return self.is_(None) if other is None else self._binary("=", other)

    def __ne__(self, other: Any) -> Frag:  # type: ignore[override]
        return self.is_not(None) if other is None else self._binary("!=", other)

    __hash__ = None  # type: ignore[assignment]

    def __lt__(self, other: Any) -> Frag:
        return self._binary("<", other)

    def __le__(self, other: Any) -> Frag:
        return self._binary("<=", other)

    def __gt__(self, other: Any) -> Frag:
        return self._binary(">", other)

    def __ge__(self, other: Any) -> Frag:
        return self._binary(">=", other)

    def __sub__(self, other: Any) -> Frag:
        f = self._binary("-", other)
        return Frag(f"({f.sql})", f.params)

    def __mul__(self, other: Any) -> Frag:
        f = self._binary("*", other)
        return Frag(f"({f.sql})", f.params)

    def is_(self, none: None) -> Frag:
        assert none is None
        return Frag(f"{self.sql} IS NULL", self.params)

    def is_not(self, none: None) -> Frag:
        assert none is None
        return Frag(f"{self.sql} IS NOT NULL", self.params)

    def in_(self, items: Frag | Iterable[Any]) -> Frag:
        """``x IN (subquery)`` for a Frag, else ``x IN (?, ...)`` (empty: false)."""
        if isinstance(items, Frag):
            return Frag(f"{self.sql} IN ({items.sql})", self.params + items.params)
        values = tuple(items)
        if not values:
            return FALSE
        return Frag(f"{self.sql} IN ({', '.join('?' * len(values))})", self.params + values)


TRUE = Frag("1")
FALSE = Frag("0")


def join_and(parts: Iterable[Frag], sep: str = " AND ") -> Frag:
    """``parts`` joined by ``sep`` (no folding, no outer parentheses)."""
    parts = list(parts)
    return Frag(sep.join(p.sql for p in parts), sum((p.params for p in parts), ()))


def _fold(parts: tuple[Frag, ...], unit: Frag, absorbing: Frag, sep: str) -> Frag:
    # Folded as SQLAlchemy folds true()/false(): the same truth value in SQL's three-valued
    # logic (NULL AND 0 is 0), and simpler text for the planner.
    kept = [p for p in parts if p is not unit]
    if any(p is absorbing for p in kept):
        return absorbing
    if not kept:
        return unit
    if len(kept) == 1:
        return kept[0]
    joined = join_and(kept, sep)
    return Frag(f"({joined.sql})", joined.params)


def _and(*parts: Frag) -> Frag:
    return _fold(parts, TRUE, FALSE, " AND ")


def _or(*parts: Frag) -> Frag:
    return _fold(parts, FALSE, TRUE, " OR ")


def _not(part: Frag) -> Frag:
    if part is TRUE:
        return FALSE
    if part is FALSE:
        return TRUE
    return Frag(f"NOT ({part.sql})", part.params)


class _Func:
    """``func.name(a, b)``: a SQL function call; non-Frag arguments are bound."""

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any) -> Frag:
            frags = [a if isinstance(a, Frag) else Frag("?", (a,)) for a in args]
            joined = join_and(frags, ", ")
            return Frag(f"{name}({joined.sql})", joined.params)
        return call


def column(col: Any) -> Frag:
    """A table column (``runs."state"``); identifiers come from the models only."""
    return Frag(f'{col.table.name}."{col.name}"')


class _Columns:
    """``table.c`` as Frags."""

    def __init__(self, table: Any) -> None:
        for col in table.columns:
            setattr(self, col.key, column(col))


_RUN_VALUES = _Columns(RunValue.__table__)
_RUNS = _Columns(Run.__table__)


def _exists_where(*conds: Frag) -> Frag:
    where = _and(*conds)
    return Frag(f"EXISTS (SELECT 1 FROM run_values WHERE {where.sql})", where.params)


def _pk_in_values(*conds: Frag) -> Frag:
    where = _and(*conds)
    sub = Frag(f"SELECT {_RUN_VALUES.run_pk.sql} FROM run_values WHERE {where.sql}", where.params)
    return _RUNS.pk.in_(sub)


class _Text:
    """The vocabulary of :mod:`.sql`'s compiler, spelled as SQLite text (see module doc)."""

    and_ = staticmethod(_and)
    or_ = staticmethod(_or)
    not_ = staticmethod(_not)
    true = staticmethod(lambda: TRUE)
    false = staticmethod(lambda: FALSE)
    func = _Func()
    rv = _RUN_VALUES
    runs = _RUNS
    column = staticmethod(column)
    exists_where = staticmethod(_exists_where)
    pk_in_values = staticmethod(_pk_in_values)


TEXT = _Text()
