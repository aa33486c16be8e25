"""Parse and validate a Mongo-style filter into a small tree, before any SQL exists.

Every error is a :class:`~wandb_mirror.errors.FilterError` whose ``path`` names the offending
node in JSON-path form: operators as ``.$gt``, field keys as ``["config.lr"]``, list items as
``[1]``, e.g. ``$.$and[1]["config.lr"].$gt``. Nothing here touches the database, so a bad filter
can never leave a trace in the store.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Union

from ..errors import FilterError
from ..store import values as V

__all__ = [
    "AllOf", "BoolNode", "Cond", "FieldNode", "MAX_CLAUSES", "MAX_DEPTH", "MAX_IN",
    "MAX_REGEX_LENGTH", "MAX_VALUES", "Node", "Not", "Op", "Stamp", "parse_filter",
]

MAX_DEPTH = 20
"""Deepest nesting of ``$and``/``$or``/``$nor``/``$not`` and operator objects."""
MAX_IN = 10_000
"""Most values in one ``$in``/``$nin``/``$all`` list."""
MAX_CLAUSES = 500
"""Most operator leaves in one filter (SQLite's expression depth limit is 1000)."""
MAX_VALUES = 20_000
"""Most operand values in one filter, all lists together (bound parameters)."""
MAX_REGEX_LENGTH = 10_000
MAX_VALUE_DEPTH = 32
"""Deepest literal array/object operand."""

REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}
"""``$options`` letters; the same flags ``store.engine``'s ``wm_regexp`` applies."""

LOGICAL = ("$and", "$or", "$nor")
RANGE = ("$gt", "$gte", "$lt", "$lte")
OPERATORS = ("$eq", "$ne", *RANGE, "$in", "$nin", "$exists", "$regex", "$options", "$all",
             "$size", "$not")


_NOT_MAPPINGS = (str, int, float, type(None), list, tuple, datetime)


def _is_mapping(v: Any) -> bool:
    """``isinstance(v, Mapping)``, answered for JSON-ish values without asking the ABC (whose
    first negative answer per type walks every registered Mapping subclass: ~0.3 ms of a
    process's first filter)."""
    return type(v) is dict or (not isinstance(v, _NOT_MAPPINGS) and isinstance(v, Mapping))


@dataclass(frozen=True)
class Stamp:
    """A timestamp operand: Unix seconds (UTC) parsed from an ISO-8601 string."""

    ts: float
    text: str


@dataclass(frozen=True)
class Op:
    """One operator applied to a field: ``op`` is ``$eq``, ``$gt``, ... ; ``where`` its JSON path."""

    op: str
    operand: Any
    where: str


@dataclass(frozen=True)
class AllOf:
    """Several operators on the same field, all of which must hold."""

    conds: tuple["Cond", ...]


@dataclass(frozen=True)
class Not:
    """``$not``: the negation of the positive match (so it matches missing values)."""

    cond: "Cond"


Cond = Union[Op, AllOf, Not]


@dataclass(frozen=True)
class FieldNode:
    """A condition on one key; ``target`` is what the key resolver returned."""

    key: str
    target: Any
    cond: Cond


@dataclass(frozen=True)
class BoolNode:
    """``and`` (also implicit AND of keys; empty = match everything), ``or`` or ``nor``."""

    op: str
    children: tuple["Node", ...]


Node = Union[FieldNode, BoolNode]


def key_path(where: str, key: Any) -> str:
    """JSON path of ``key`` under ``where``: ``.$op`` for operators, ``["field"]`` otherwise."""
    if isinstance(key, str) and key.startswith("$"):
        return f"{where}.{key}"
    return f"{where}[{json.dumps(key, ensure_ascii=False, default=str)}]"


@dataclass
class _Budget:
    clauses: int = 0
    values: int = 0

    def clause(self, where: str) -> None:
        self.clauses += 1
        if self.clauses > MAX_CLAUSES:
            raise FilterError(f"filter has more than {MAX_CLAUSES} conditions; use $in for long "
                              "lists of alternatives", where)

    def value(self, n: int, where: str) -> None:
        self.values += n
        if self.values > MAX_VALUES:
            raise FilterError(f"filter has more than {MAX_VALUES} operand values", where)


Resolver = Callable[[str, str], Any]
"""``resolver(key, where) -> target``; raises FilterError for unknown keys."""
IsTimestamp = Callable[[Any], bool]


@dataclass
class _Parser:
    resolve: Resolver
    is_timestamp: IsTimestamp
    budget: _Budget = field(default_factory=_Budget)

    # ------------------------------------------------------------------ documents
    def document(self, obj: Any, where: str, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise FilterError(f"filter is nested deeper than {MAX_DEPTH} levels", where)
        if not _is_mapping(obj):
            raise FilterError(f"a filter must be an object (dict), not {_tname(obj)}", where)
        children: list[Node] = []
        for key, val in obj.items():
            w = key_path(where, key)
            if not isinstance(key, str):
                raise FilterError(f"a key must be a string, not {_tname(key)}", w)
            if key.startswith("$"):
                if key in LOGICAL:
                    if not isinstance(val, (list, tuple)) or not val:
                        raise FilterError(f"{key} needs a non-empty array of filter objects", w)
                    subs = tuple(self.document(sub, f"{w}[{i}]", depth + 1)
                                 for i, sub in enumerate(val))
                    children.append(BoolNode(key[1:], subs))
                elif key == "$not":
                    raise FilterError('$not applies to one key\'s operators, e.g. '
                                      '{"config.lr": {"$not": {"$gt": 0.1}}}; use $nor to negate '
                                      "a whole filter", w)
                elif key in OPERATORS:
                    raise FilterError(f"{key} must be applied to a key, e.g. "
                                      f'{{"state": {{"{key}": ...}}}}', w)
                else:
                    raise FilterError(f"unknown top-level operator {key!r}; use "
                                      f"{', '.join(LOGICAL)} or a key", w)
            else:
                target = self.resolve(key, w)
                children.append(FieldNode(key, target, self.cond(val, target, w, depth + 1)))
        if len(children) == 1:
            return children[0]
        return BoolNode("and", tuple(children))

    # ------------------------------------------------------------------ operators
    def cond(self, val: Any, target: Any, where: str, depth: int) -> Cond:
        if depth > MAX_DEPTH:
            raise FilterError(f"filter is nested deeper than {MAX_DEPTH} levels", where)
        if not (_is_mapping(val) and any(isinstance(k, str) and k.startswith("$")
                                                  for k in val)):
            self.budget.clause(where)
            return Op("$eq", self.value(val, target, where, literal=True), where)
        bad = [k for k in val if not (isinstance(k, str) and k.startswith("$"))]
        if bad:
            raise FilterError(f"an operator object cannot also hold the field {bad[0]!r}; "
                              "use $eq for a literal object", key_path(where, bad[0]))
        conds: list[Cond] = []
        for op, operand in val.items():
            w = key_path(where, op)
            if op == "$options":
                if "$regex" not in val:
                    raise FilterError("$options needs a $regex next to it", w)
                continue
            if op not in OPERATORS:
                raise FilterError(f"unknown operator {op!r}; supported: "
                                  f"{', '.join(sorted(set(OPERATORS) | set(LOGICAL)))}", w)
            if op == "$not":
                if not _is_mapping(operand) or not operand:
                    raise FilterError("$not needs a non-empty object of operators, e.g. "
                                      '{"$not": {"$gt": 1}}', w)
                if not all(isinstance(k, str) and k.startswith("$") for k in operand):
                    raise FilterError("$not needs an object of operators, not a literal value",
                                      w)
                conds.append(Not(self.cond(operand, target, w, depth + 1)))
                continue
            self.budget.clause(w)
            conds.append(self.operator(op, operand, val, target, w))
        return conds[0] if len(conds) == 1 else AllOf(tuple(conds))

    def operator(self, op: str, operand: Any, siblings: Mapping[str, Any], target: Any,
                 w: str) -> Op:
        if op in ("$eq", "$ne"):
            return Op(op, self.value(operand, target, w, literal=True), w)
        if op in RANGE:
            value = self.value(operand, target, w, literal=False)
            return Op(op, value, w)
        if op in ("$in", "$nin", "$all"):
            if not isinstance(operand, (list, tuple)):
                raise FilterError(f"{op} needs an array, not {_tname(operand)}", w)
            if len(operand) > MAX_IN:
                raise FilterError(f"{op} has {len(operand)} values; at most {MAX_IN} are "
                                  "allowed", w)
            self.budget.value(len(operand), w)
            items = []
            for i, item in enumerate(operand):
                if _is_mapping(item) and any(isinstance(k, str) and k.startswith("$")
                                                     for k in item):
                    raise FilterError(f"operators inside {op} are not supported", f"{w}[{i}]")
                items.append(self.value(item, target, f"{w}[{i}]", literal=True))
            return Op(op, tuple(items), w)
        if op == "$exists":
            if isinstance(operand, bool):
                return Op(op, operand, w)
            if isinstance(operand, (int, float)) and not (isinstance(operand, float)
                                                          and math.isnan(operand)):
                return Op(op, bool(operand), w)
            raise FilterError(f"$exists needs true or false, not {_tname(operand)}", w)
        if op == "$size":
            if isinstance(operand, bool) or not isinstance(operand, (int, float)):
                raise FilterError(f"$size needs a non-negative integer, not {_tname(operand)}", w)
            if isinstance(operand, float) and not (math.isfinite(operand)
                                                   and operand == int(operand)):
                raise FilterError("$size needs a non-negative integer", w)
            if operand < 0 or operand > V.INT64_MAX:
                raise FilterError("$size needs a non-negative integer", w)
            return Op(op, int(operand), w)
        assert op == "$regex"
        return Op(op, self.regex(operand, siblings.get("$options", ""), w), w)

    def regex(self, pattern: Any, options: Any, w: str) -> tuple[str, str]:
        if not isinstance(pattern, str):
            raise FilterError(f"$regex needs a string, not {_tname(pattern)}", w)
        if len(pattern) > MAX_REGEX_LENGTH:
            raise FilterError(f"$regex is longer than {MAX_REGEX_LENGTH} characters", w)
        _check_text(pattern, w)
        ow = w.rsplit(".", 1)[0] + ".$options"
        if not isinstance(options, str):
            raise FilterError(f"$options needs a string of letters, not {_tname(options)}", ow)
        flags = 0
        for ch in options:
            if ch not in REGEX_FLAGS:
                raise FilterError(f"unknown $options letter {ch!r}; supported: i, m, s, x", ow)
            flags |= REGEX_FLAGS[ch]
        try:
            re.compile(pattern, flags)
        except (re.error, RecursionError, OverflowError, ValueError) as exc:
            raise FilterError(f"invalid $regex {pattern!r}: {exc}", w) from None
        return pattern, "".join(sorted(set(options)))

    # ------------------------------------------------------------------ values
    def value(self, v: Any, target: Any, w: str, *, literal: bool) -> Any:
        self.budget.value(1, w)
        if self.is_timestamp(target):
            return _stamp(v, w)
        if isinstance(v, datetime):
            raise FilterError("a datetime operand is only valid for a timestamp key", w)
        if not literal and (isinstance(v, (list, tuple)) or _is_mapping(v)):
            raise FilterError("range operators take a number, string, boolean or timestamp, "
                              f"not {_tname(v)}", w)
        return _check_value(v, w, 0)


def _stamp(v: Any, w: str) -> Stamp | None:
    if v is None:
        return None
    if isinstance(v, datetime):
        dt = v if v.tzinfo is not None else v.replace(tzinfo=timezone.utc)
        return Stamp(dt.timestamp(), v.isoformat())
    if isinstance(v, str):
        ts = V.parse_timestamp(v)
        if ts is not None:
            return Stamp(ts, v)
    raise FilterError(f"a timestamp key needs an ISO-8601 string such as "
                      f"\"2023-01-01T12:00:00Z\", not {v!r}", w)


def _check_text(s: str, w: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise FilterError("string is not valid unicode (lone surrogate)", w) from None


def _check_value(v: Any, w: str, depth: int) -> Any:
    """Validate a JSON operand value; returns it (tuples become lists)."""
    if depth > MAX_VALUE_DEPTH:
        raise FilterError(f"operand value is nested deeper than {MAX_VALUE_DEPTH} levels", w)
    if v is None or isinstance(v, (bool, float)):
        return v
    if isinstance(v, int):
        if abs(v) >= 2**1023:
            raise FilterError("integer operand is too large", w)
        return v
    if isinstance(v, str):
        _check_text(v, w)
        return v
    if isinstance(v, (list, tuple)):
        return [_check_value(x, f"{w}[{i}]", depth + 1) for i, x in enumerate(v)]
    if _is_mapping(v):
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise FilterError(f"object keys must be strings, not {_tname(k)}", w)
            _check_text(k, w)
            out[k] = _check_value(x, key_path(w, k), depth + 1)
        return out
    raise FilterError(f"unsupported operand type {_tname(v)}; use JSON values", w)


def _tname(v: Any) -> str:
    if v is None:
        return "null"
    return {dict: "object", list: "array", tuple: "array", str: "string", bool: "boolean",
            int: "number", float: "number"}.get(type(v), type(v).__name__)


def parse_filter(filters: Any, resolve: Resolver, is_timestamp: IsTimestamp) -> Node:
    """Parse and validate a filter document.

    Args:
        filters: the filter dict (None or ``{}`` matches everything).
        resolve: maps a key (and its JSON path, for errors) to a target.
        is_timestamp: whether a target's operands are ISO-8601 timestamps.

    Returns:
        The filter tree.

    Raises:
        FilterError: malformed filter; ``path`` names the offending node.
    """
    if filters is None:
        return BoolNode("and", ())
    if isinstance(filters, (str, bytes)):
        raise FilterError("a filter must be an object (dict), not a string; decode JSON first",
                          "$")
    return _Parser(resolve, is_timestamp).document(filters, "$", 0)
