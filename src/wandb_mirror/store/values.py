"""Lossless JSON codec and the derived ``run_values`` index.

Why an index table and not SQLite's JSON functions: SQLite (3.40 here, no JSONB) rejects the
``NaN``/``Infinity`` tokens that diverged runs log, re-parses the whole document on every
``json_extract``, and cannot index inside it. Instead every value of a run's config (unwrapped),
summary and filterable run columns is written once, at sync time, as rows of ``run_values``:

- ``root``: :data:`CONFIG`, :data:`SUMMARY` or :data:`RUN`;
- ``path``: dotted path (``opt.lr`` both for ``{"opt": {"lr": ..}}`` and for a key ``"opt.lr"``);
- ``elem``: 0 for the value itself, 1 for each element of an array value (Mongo matches
  arrays element-wise);
- ``kind``: Mongo's type class (:data:`NULL`, :data:`BOOL`, :data:`NUMBER`, :data:`STRING`,
  :data:`OBJECT`, :data:`ARRAY`, :data:`DATE`);
- ``num``: the number (ints exact as INTEGER inside the int64 range, REAL otherwise; NULL for
  NaN with ``nan = 1``; ±Infinity as REAL), booleans as 0/1, timestamps as Unix seconds;
- ``txt``: the string, the canonical JSON of an object/array (keys sorted, integral floats
  written as ints so ``[1] == [1.0]``), or the exact digits of an integer outside int64.

The raw JSON text stays in the ``*_raw`` columns; this index is derived and can be rebuilt.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "ARRAY", "BOOL", "CONFIG", "DATE", "MAX_ARRAY_ELEMENTS", "MAX_DEPTH", "NONFINITE_STRINGS",
    "NULL", "NUMBER", "OBJECT", "RUN", "STRING", "SUMMARY", "canonical_json", "dumps", "flatten",
    "loads", "nonfinite_as_strings", "parse_timestamp", "run_value_rows", "scalar_fields",
    "unwrap_config",
]

CONFIG, SUMMARY, RUN = 0, 1, 2
NULL, BOOL, NUMBER, STRING, OBJECT, ARRAY, DATE = 0, 1, 2, 3, 4, 5, 6

MAX_DEPTH = 32
"""Nested objects deeper than this are indexed as a whole (equality) but not descended into."""
MAX_ARRAY_ELEMENTS = 4096
"""Arrays longer than this get no per-element rows (a histogram's bins, say)."""

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# One encoder/decoder each: json.dumps/loads with non-default options build a new one per call,
# which costs more than encoding a typical history row.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=True, separators=(",", ":"))
_DECODER = json.JSONDecoder(strict=False)


def dumps(obj: Any) -> str:
    """Serialise to JSON text that :func:`loads` turns back into an equal value.

    NaN and ±Infinity are written as the ``NaN``/``Infinity`` tokens (what W&B itself emits),
    big integers as exact digits, unicode unescaped.
    """
    return _ENCODER.encode(obj)


def loads(text: str | bytes | None) -> Any:
    """Parse JSON text, accepting NaN/Infinity tokens and raw control characters."""
    if text is None:
        return None
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    return _DECODER.decode(text)


NONFINITE_STRINGS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
"""How W&B spells non-finite numbers where a reply must be standard JSON (see
:func:`nonfinite_as_strings`)."""


def _nonfinite_string(value: float) -> str | float:
    if value != value:
        return "NaN"
    if value == math.inf:
        return "Infinity"
    if value == -math.inf:
        return "-Infinity"
    return value


def nonfinite_as_strings(obj: Any) -> Any:
    """``obj`` with every NaN/±Infinity float replaced by the string ``"NaN"``, ``"Infinity"``
    or ``"-Infinity"`` (containers copied only where something changed).

    For JSON *values* of a GraphQL reply, i.e. ``sampledHistory`` rows, which wandb-core parses
    with Go's standard ``encoding/json``: a ``NaN`` token there fails the whole reply
    (``invalid character 'N' looking for beginning of value``), and the W&B server sends these
    strings instead (wandb's own ``util.make_safe_for_json``: "W&B backend and UI handle these
    strings"; wandb/sweeps reads ``'NaN'`` strings from ``sampledHistory``). History rows sent
    as JSON *strings* (``history``, ``events``) keep the ``NaN``/``Infinity`` tokens of
    :func:`dumps`: wandb-core parses those with its NaN-aware ``simplejsonext`` and Python's
    ``json`` accepts them, so they round-trip as floats, which strings would not (a logged
    string ``"NaN"`` must stay a string).
    """
    if type(obj) is float:
        return obj if math.isfinite(obj) else _nonfinite_string(obj)
    if isinstance(obj, Mapping):
        out = None
        for key, value in obj.items():
            fixed = nonfinite_as_strings(value)
            if fixed is not value:
                if out is None:
                    out = dict(obj)
                out[key] = fixed
        return obj if out is None else out
    if isinstance(obj, (list, tuple)):
        items = [nonfinite_as_strings(v) for v in obj]
        if all(a is b for a, b in zip(items, obj)):
            return obj
        return items
    if isinstance(obj, float):  # a float subclass (numpy.float64)
        return obj if math.isfinite(obj) else _nonfinite_string(obj)
    return obj


def _canon(obj: Any) -> Any:
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, float):
        if math.isfinite(obj) and obj == int(obj) and abs(obj) < 2**63:
            return int(obj)
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): _canon(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_canon(v) for v in obj]
    return obj


def canonical_json(obj: Any) -> str:
    """Canonical text of a value for equality: keys sorted, integral floats as ints."""
    return json.dumps(_canon(obj), sort_keys=True, ensure_ascii=False, allow_nan=True,
                      separators=(",", ":"))


def parse_timestamp(value: Any) -> float | None:
    """Unix seconds of an ISO-8601 string (naive means UTC), or None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def scalar_fields(value: Any) -> tuple[int, Any, bool, str | None]:
    """``(kind, num, nan, txt)`` of one value, as stored in ``run_values``."""
    if value is None:
        return NULL, None, False, None
    if isinstance(value, bool):
        return BOOL, int(value), False, None
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return NUMBER, value, False, None
        try:
            approx = float(value)
        except OverflowError:  # beyond any double: orders as ±infinity, equality by digits
            approx = math.inf if value > 0 else -math.inf
        return NUMBER, approx, False, str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return NUMBER, None, True, None
        return NUMBER, value, False, None
    if isinstance(value, str):
        return STRING, None, False, value
    if isinstance(value, Mapping):
        return OBJECT, None, False, canonical_json(value)
    if isinstance(value, (list, tuple)):
        return ARRAY, None, False, canonical_json(value)
    return STRING, None, False, str(value)


def flatten(
    obj: Mapping[str, Any], prefix: str | None = None, depth: int = 0
) -> Iterator[tuple[str, int, Any]]:
    """Yield ``(path, elem, value)`` for every value under a mapping, depth first."""
    for key, value in obj.items():
        path = str(key) if prefix is None else f"{prefix}.{key}"
        yield path, 0, value
        if isinstance(value, Mapping):
            if depth + 1 < MAX_DEPTH:
                yield from flatten(value, path, depth + 1)
        elif isinstance(value, (list, tuple)) and len(value) <= MAX_ARRAY_ELEMENTS:
            for element in value:
                yield path, 1, element


def unwrap_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Config as the client unwraps it: top-level ``{"value": v, ...}`` becomes ``v``."""
    out: dict[str, Any] = {}
    for key, value in (config or {}).items():
        if isinstance(value, Mapping) and "value" in value:
            out[key] = value["value"]
        else:
            out[key] = value
    return out


TIMESTAMP_PATHS = frozenset({"createdAt", "heartbeatAt", "updatedAt"})


def run_value_rows(
    run_pk: int,
    config: Mapping[str, Any] | None,
    summary: Mapping[str, Any] | None,
    columns: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """All ``run_values`` rows of one run.

    Args:
        run_pk: the run's primary key.
        config: the parsed raw config (wrappers are removed here).
        summary: the parsed summary.
        columns: run fields under their canonical filter names (``state``, ``tags``,
            ``createdAt``, ``displayName``, ...); timestamps as ISO strings.
    """
    rows: list[dict[str, Any]] = []

    def add(root: int, path: str, elem: int, value: Any) -> None:
        kind, num, nan, txt = scalar_fields(value)
        size = len(value) if kind == ARRAY else None
        rows.append({"run_pk": run_pk, "root": root, "path": path, "elem": elem, "kind": kind,
                     "num": num, "nan": nan, "txt": txt, "size": size})

    for root, doc in ((CONFIG, unwrap_config(config)), (SUMMARY, summary or {})):
        if isinstance(doc, Mapping):
            for path, elem, value in flatten(doc):
                add(root, path, elem, value)
    for name, value in columns.items():
        if name in TIMESTAMP_PATHS and isinstance(value, str):
            ts = parse_timestamp(value)
            if ts is not None:
                rows.append({"run_pk": run_pk, "root": RUN, "path": name, "elem": 0,
                             "kind": DATE, "num": ts, "nan": False, "txt": value, "size": None})
                continue
        add(RUN, name, 0, value)
        if isinstance(value, (list, tuple)):
            for element in value[:MAX_ARRAY_ELEMENTS]:
                add(RUN, name, 1, element)
    return rows
