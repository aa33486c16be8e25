"""Compile a parsed filter tree to SQLAlchemy boolean expressions.

Two backends share the boolean skeleton (:func:`compile_node`):

- :class:`RunValuesBackend` answers each leaf with ``runs.pk IN (SELECT run_pk FROM run_values
  WHERE root = ? AND path = ? AND <kind/num/txt condition>)``. One uncorrelated subquery per leaf
  (served by the ``(root, path, kind, num|txt)`` indexes) composes freely under
  ``$or``/``$nor``/``$not``, and a negation is exactly ``NOT`` of the positive match, so it matches
  runs where the key is missing. Every expression is two-valued (never SQL NULL), so ``NOT`` is
  safe. With ``correlated=True`` each leaf is instead ``EXISTS (SELECT 1 FROM run_values WHERE
  run_pk = runs.pk AND ...)`` (the same truth value, row by row): cheaper when only a few runs
  are looked at, as when a first page is read along the order index.
- :class:`ColumnBackend` answers leaves on plain columns (sweeps, artifact versions), where a
  NULL column means "missing".

Dialect-specific SQL lives only in :func:`regex_match`, :func:`timestamp_ms` and
:func:`sort_value` (SQLite: the ``wm_regexp`` function registered by ``store.engine``,
``julianday``, a sort column mixing numbers and text).

The backends combine a small vocabulary (``ns.and_``, ``ns.func``, ``ns.rv.kind == ...``, the
two ``run_values`` probes): :data:`CORE` spells it with SQLAlchemy Core, for any dialect;
:data:`~.sqlite_text.TEXT` spells it as SQLite text, which a process's first query needs
(SQLAlchemy's first build and compile of a statement costs milliseconds). One compiler, two
spellings.
"""
from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)

from ..store import values as V
from ..store.models import Run, RunValue
from .keys import ColumnKey, KeySpec
from .parse import AllOf, BoolNode, Cond, FieldNode, Node, Not, Op, Stamp

__all__ = ["CORE", "ColumnBackend", "RUNS", "RUN_VALUES", "RunValuesBackend", "compile_node",
           "regex_match", "sort_value", "timestamp_ms"]

RUNS = Run.__table__
"""The ``runs`` table. Run filters and orders are built on table columns, not ORM attributes,
so they compile and run without configuring the ORM mappers (a process's first ORM query pays
tens of ms for that)."""
RUN_VALUES = RunValue.__table__


class _Core:
    """The compiler's vocabulary spelled with SQLAlchemy Core (see the module doc)."""

    and_ = staticmethod(and_)
    or_ = staticmethod(or_)
    not_ = staticmethod(not_)
    true = staticmethod(true)
    false = staticmethod(false)
    func = func
    rv = RUN_VALUES.c
    runs = RUNS.c

    @staticmethod
    def column(col: Any) -> Any:
        return col

    @staticmethod
    def exists_where(*conds: Any) -> Expr:
        """``EXISTS (SELECT 1 FROM run_values WHERE conds)``."""
        return exists(select(literal(1)).where(*conds))

    @staticmethod
    def pk_in_values(*conds: Any) -> Expr:
        """``runs.pk IN (SELECT run_pk FROM run_values WHERE conds)``."""
        return RUNS.c.pk.in_(select(RUN_VALUES.c.run_pk).where(*conds))


CORE = _Core()

Expr = ColumnElement[bool]
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le,
}


# ------------------------------------------------------------------ dialect-specific pieces

def regex_match(pattern: str, options: str, text: Any, ns: Any = CORE) -> Expr:
    """``text`` matches ``pattern`` (Python ``re.search`` with Mongo ``$options`` letters)."""
    return ns.func.wm_regexp(pattern, options, text) == 1


def timestamp_ms(column: Any, ns: Any = CORE) -> Any:
    """Milliseconds since the epoch of an ISO-8601 text column (NULL when unparseable)."""
    return ns.func.round((ns.func.julianday(column) - 2440587.5) * 86400000.0)


def sort_value(rv: Any) -> Any:
    """One sortable value of a ``run_values`` row: ``num`` for numbers, booleans and timestamps,
    ``txt`` otherwise. SQLite sorts a column mixing REAL/INTEGER and TEXT fine because rows are
    first grouped by type rank; another dialect would need two columns here."""
    return case((rv.kind.in_([V.NUMBER, V.BOOL, V.DATE]), rv.num), else_=rv.txt)


# ------------------------------------------------------------------ boolean skeleton

def compile_node(node: Node, backend: Any) -> Expr:
    """Compile a filter tree with ``backend`` answering the leaves (in ``backend.ns``)."""
    if isinstance(node, BoolNode):
        ns = backend.ns
        parts = [compile_node(child, backend) for child in node.children]
        if node.op == "and":
            return ns.and_(ns.true(), *parts) if parts else ns.true()
        if node.op == "or":
            return ns.or_(*parts)
        return ns.not_(ns.or_(*parts))  # nor
    assert isinstance(node, FieldNode)
    leaf_backend, target = backend.route(node.target)
    return compile_cond(node.cond, target, leaf_backend)


def compile_cond(cond: Cond, target: Any, backend: Any) -> Expr:
    ns = backend.ns
    if isinstance(cond, AllOf):
        return ns.and_(*(compile_cond(c, target, backend) for c in cond.conds))
    if isinstance(cond, Not):
        return ns.not_(compile_cond(cond.cond, target, backend))
    assert isinstance(cond, Op)
    op, v = cond.op, cond.operand
    if op == "$eq":
        return backend.eq(target, v)
    if op == "$ne":
        return ns.not_(backend.eq(target, v))
    if op == "$in":
        return backend.in_(target, v)
    if op == "$nin":
        return ns.not_(backend.in_(target, v))
    if op == "$all":
        # Mongo: $all is the AND of equalities; an empty $all matches nothing.
        return ns.and_(*(backend.eq(target, x) for x in v)) if v else ns.false()
    if op in _OPS:
        return backend.compare(target, op, v)
    if op == "$exists":
        return backend.exists(target) if v else ns.not_(backend.exists(target))
    if op == "$regex":
        return backend.regex(target, *v)
    if op == "$size":
        return backend.size(target, v)
    raise AssertionError(op)  # the parser admits no other operator


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _big(v: Any) -> int | None:
    """The exact integer of a numeric operand that a stored integer outside int64 (kept as a
    REAL approximation plus exact digits in ``txt``) can tie with, else None.

    That is any integer outside int64, any float of magnitude >= 2**63, and -2**63 itself
    (exactly a double, which ``-(2**63) - 5`` rounds to).
    """
    if isinstance(v, bool):
        return None
    if isinstance(v, int) and not V.INT64_MIN < v <= V.INT64_MAX:
        return v
    if isinstance(v, float) and math.isfinite(v) and abs(v) >= 2**63:
        return int(v)
    return None


# ------------------------------------------------------------------ run_values backend

class RunValuesBackend:
    """Leaves over the ``run_values`` index, correlated to ``Run.pk``.

    Run columns that ``runs`` holds verbatim as string-or-null (``state``, ``displayName``,
    ``name``, ``group``, ...) are answered from the ``runs`` row itself, which saves one
    subquery per leaf; the semantics are the same (the index always has a row for them, so they
    always "exist", possibly as null).
    """

    def __init__(self, *, correlated: bool = False, ns: Any = CORE) -> None:
        self.ns = ns
        self.rv = ns.rv
        self.direct = _DirectColumns(ns)
        self.correlated = correlated

    def route(self, spec: KeySpec) -> tuple[Any, Any]:
        """(backend, target) answering leaves on ``spec``."""
        if spec.direct:
            return self.direct, ColumnKey(self.ns.column(spec.order_column), "string")
        return self, spec

    def _has(self, spec: KeySpec, *conds: Any) -> Expr:
        rv, ns = self.rv, self.ns
        path = rv.path == spec.paths[0] if len(spec.paths) == 1 else rv.path.in_(spec.paths)
        if self.correlated:
            # elem IN (0, 1) (always true) makes (run_pk, root, path, elem, ...) the index that
            # SQLite picks for the probe, rather than a range scan of (root, path, kind, num).
            return ns.exists_where(rv.run_pk == ns.runs.pk, rv.root == spec.root, path,
                                   rv.elem.in_((0, 1)), *conds)
        return ns.pk_in_values(rv.root == spec.root, path, *conds)

    def _row_eq(self, v: Any) -> Any:
        """Row condition for "this value (or element) equals v", v not None."""
        rv, and_, or_ = self.rv, self.ns.and_, self.ns.or_
        if isinstance(v, Stamp):
            return and_(rv.kind == V.DATE, rv.num == v.ts)
        if isinstance(v, bool):
            return and_(rv.kind == V.BOOL, rv.num == int(v))
        if _is_number(v):
            if _is_nan(v):
                return and_(rv.kind == V.NUMBER, rv.nan == True)  # noqa: E712
            big = _big(v)
            if big is None:
                return and_(rv.kind == V.NUMBER, rv.num == v)
            f = float(big)
            exact = rv.txt == str(big)
            if f == big:  # a stored float can equal the operand exactly
                exact = or_(exact, rv.txt.is_(None))
            return and_(rv.kind == V.NUMBER, rv.num == f, exact)
        if isinstance(v, str):
            return and_(rv.kind == V.STRING, rv.txt == v)
        if isinstance(v, list):
            return and_(rv.kind == V.ARRAY, rv.txt == V.canonical_json(v))
        return and_(rv.kind == V.OBJECT, rv.txt == V.canonical_json(v))

    def exists(self, spec: KeySpec) -> Expr:
        return self._has(spec)

    def eq(self, spec: KeySpec, v: Any) -> Expr:
        if v is None:  # null matches null, an array holding null, or a missing key
            return self.ns.or_(self._has(spec, self.rv.kind == V.NULL),
                               self.ns.not_(self._has(spec)))
        return self._has(spec, self._row_eq(v))

    def in_(self, spec: KeySpec, items: Sequence[Any]) -> Expr:
        rv, and_, or_ = self.rv, self.ns.and_, self.ns.or_
        if not items:
            return self.ns.false()
        buckets: dict[tuple[int, str], list[Any]] = {}
        singles: list[Any] = []
        has_null = False
        for v in items:
            if v is None:
                has_null = True
            elif isinstance(v, Stamp):
                buckets.setdefault((V.DATE, "num"), []).append(v.ts)
            elif isinstance(v, bool):
                buckets.setdefault((V.BOOL, "num"), []).append(int(v))
            elif _is_number(v) and not _is_nan(v) and _big(v) is None:
                buckets.setdefault((V.NUMBER, "num"), []).append(v)
            elif isinstance(v, str):
                buckets.setdefault((V.STRING, "txt"), []).append(v)
            elif isinstance(v, list):
                buckets.setdefault((V.ARRAY, "txt"), []).append(V.canonical_json(v))
            elif isinstance(v, dict):
                buckets.setdefault((V.OBJECT, "txt"), []).append(V.canonical_json(v))
            else:  # NaN, big integers
                singles.append(self._row_eq(v))
        rows = [and_(rv.kind == kind, getattr(rv, col).in_(sorted(set(vals), key=repr)))
                for (kind, col), vals in buckets.items()] + singles
        parts = [self._has(spec, or_(*rows))] if rows else []
        if has_null:
            parts.append(self.eq(spec, None))
        return or_(*parts)

    def compare(self, spec: KeySpec, op: str, v: Any) -> Expr:
        rv = self.rv
        fn = _OPS[op]
        if v is None:  # Mongo: $gte/$lte null behave as equality to null; $gt/$lt match nothing
            return self.eq(spec, None) if op in ("$gte", "$lte") else self.ns.false()
        if isinstance(v, Stamp):
            return self._has(spec, rv.kind == V.DATE, fn(rv.num, v.ts))
        if isinstance(v, bool):
            return self._has(spec, rv.kind == V.BOOL, fn(rv.num, int(v)))
        if isinstance(v, str):
            return self._has(spec, rv.kind == V.STRING, fn(rv.txt, v))
        if _is_nan(v):  # NaN never satisfies a range operator
            return self.ns.false()
        big = _big(v)
        if big is None:  # SQLite compares INTEGER with REAL exactly; NaN rows have num NULL
            return self._has(spec, rv.kind == V.NUMBER, fn(rv.num, v))
        return self._has(spec, rv.kind == V.NUMBER, self._big_compare(op, big))

    def _big_compare(self, op: str, big: int) -> Any:
        """Exact comparison against an integer outside int64 (stored values there are REAL
        approximations plus exact digits in ``txt``)."""
        rv, ns = self.rv, self.ns
        and_, or_, func = ns.and_, ns.or_, ns.func
        f, s = float(big), str(big)
        strict = rv.num > f if op in ("$gt", "$gte") else rv.num < f
        # In the tie zone (num == f) the stored value is f itself (txt NULL) or int(txt), which
        # has the operand's sign; compare digit strings by length, then lexicographically.
        longer = func.length(rv.txt) > len(s)
        shorter = func.length(rv.txt) < len(s)
        same_len = func.length(rv.txt) == len(s)
        if big > 0:
            txt_gt = or_(longer, and_(same_len, rv.txt > s))
            txt_lt = or_(shorter, and_(same_len, rv.txt < s))
        else:
            txt_gt = or_(shorter, and_(same_len, rv.txt < s))
            txt_lt = or_(longer, and_(same_len, rv.txt > s))
        txt_eq = rv.txt == s
        want = {"$gt": or_(txt_gt), "$gte": or_(txt_gt, txt_eq),
                "$lt": or_(txt_lt), "$lte": or_(txt_lt, txt_eq)}[op]
        float_ok = ns.true() if _OPS[op](f, big) else ns.false()
        tie = and_(rv.num == f, or_(and_(rv.txt.is_(None), float_ok),
                                    and_(rv.txt.is_not(None), want)))
        return or_(strict, tie)

    def regex(self, spec: KeySpec, pattern: str, options: str) -> Expr:
        rv = self.rv
        return self._has(spec, rv.kind == V.STRING,
                         regex_match(pattern, options, rv.txt, self.ns))

    def size(self, spec: KeySpec, n: int) -> Expr:
        rv = self.rv
        return self._has(spec, rv.kind == V.ARRAY, rv.elem == 0, rv.size == n)


# ------------------------------------------------------------------ plain-column backend

class ColumnBackend:
    """Leaves over plain table columns; a NULL column counts as a missing value.

    ``target.column`` is a column of ``ns`` (a table column for :data:`CORE`)."""

    def __init__(self, ns: Any = CORE) -> None:
        self.ns = ns

    def _value(self, target: ColumnKey) -> Any:
        return (timestamp_ms(target.column, self.ns) if target.kind == "timestamp"
                else target.column)

    @staticmethod
    def _operand(target: ColumnKey, v: Any) -> tuple[bool, Any]:
        """(type-compatible, SQL operand) for a value against the column's type class."""
        kind = target.kind
        if kind == "timestamp":
            return (True, round(v.ts * 1000.0)) if isinstance(v, Stamp) else (False, None)
        if kind == "string":
            return (isinstance(v, str), v)
        if kind == "bool":
            return (isinstance(v, bool), v)
        if not _is_number(v) or _is_nan(v):
            return False, None
        return True, (float(v) if _big(v) is not None else v)

    def route(self, target: ColumnKey) -> tuple[Any, Any]:
        return self, target

    def _guarded(self, target: ColumnKey, expr: Any) -> Expr:
        return self.ns.and_(self._value(target).is_not(None), expr)

    def exists(self, target: ColumnKey) -> Expr:
        return self._value(target).is_not(None)

    def eq(self, target: ColumnKey, v: Any) -> Expr:
        if v is None:
            return self._value(target).is_(None)
        ok, x = self._operand(target, v)
        if not ok or (_is_number(v) and _big(v) is not None and float(v) != v):
            return self.ns.false()
        return self._guarded(target, self._value(target) == x)

    def in_(self, target: ColumnKey, items: Sequence[Any]) -> Expr:
        parts = [self.eq(target, v) for v in items if v is None][:1]
        good = [x for ok, x in (self._operand(target, v) for v in items if v is not None) if ok]
        if good:
            parts.append(self._guarded(target, self._value(target).in_(good)))
        return self.ns.or_(*parts) if parts else self.ns.false()

    def compare(self, target: ColumnKey, op: str, v: Any) -> Expr:
        if v is None:
            return self.eq(target, None) if op in ("$gte", "$lte") else self.ns.false()
        ok, x = self._operand(target, v)
        if not ok:
            return self.ns.false()
        return self._guarded(target, _OPS[op](self._value(target), x))

    def regex(self, target: ColumnKey, pattern: str, options: str) -> Expr:
        if target.kind != "string":
            return self.ns.false()
        return self._guarded(target, regex_match(pattern, options, target.column, self.ns))

    def size(self, target: ColumnKey, n: int) -> Expr:
        return self.ns.false()  # plain columns never hold arrays



class _DirectColumns(ColumnBackend):
    """A run column read from ``runs``: like a plain column, except that null is *present*."""

    def exists(self, target: ColumnKey) -> Expr:
        return self.ns.true()
