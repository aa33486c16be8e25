"""Run history, column-chunked: one Arrow array per key per chunk of consecutive rows.

Layout (tables ``history_chunks`` and ``history_columns``, see ``docs/history-layout.md``):

- rows of one run and stream are cut into chunks of :data:`CHUNK_ROWS` consecutive rows; a chunk
  records its first/last step (``min_step``/``max_step``) and row count;
- every key present in a chunk gets one ``history_columns`` row: an Arrow IPC stream holding one
  array of ``n_rows`` values, null where the row did not log the key (absent != null);
- the encoding is chosen per (chunk, key): ``int64``, ``float64``, ``bool``, ``string`` when the
  values are homogeneous; ``number`` for ints mixed with floats (float64 values plus an
  ``is_int`` bit per row, ints within +-2**53, so ``1`` stays ``1`` and ``0.5`` stays ``0.5``);
  ``json`` (each value as JSON text, :func:`wandb_mirror.store.values.dumps`) for anything else:
  explicit nulls, dicts/media, lists, ints beyond int64, mixed types;
- the default stream stores ``_step`` as an ``int64`` column; other streams (system ``events``)
  have no step: rows are numbered by an internal ordinal that ``min_step``/``max_step`` of the
  chunk table hold and that is never returned as a key.

Why: measured by ``bench/history_layouts.py`` on a 1M-step x 10-key run against one JSON text
row per step and against per-chunk Parquet blobs (table and reasoning in
``docs/history-layout.md``, summary in ``bench/RESULTS.md``). On 2 shared vCPUs: full load into
pandas 0.17 s (JSON rows 34 s: no per-row Python work, ~620 Arrow arrays opened zero-copy); a
500-point 2-key sampled view 40 ms (JSON rows 39 s: only the requested keys' blobs are read and
<= 500 values decoded); a paged dict scan 280k rows/s (about the speed of building 11-key dicts
in CPython here); appending 1k steps 12 ms (one partial chunk rewritten); 500 runs x 20k steps x
2 keys into one DataFrame 0.8 s. Chunk size 16384 and no compression won on measurement.

Concurrency: one writer per run at a time (the sync worker); readers never block it (WAL).

Step ranges: ``min_step`` inclusive, ``max_step`` EXCLUSIVE everywhere in this module (as
``scan_history``); callers wanting W&B's inclusive ``sampledHistory`` ``maxStep`` pass ``max + 1``.
"""
from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, Union

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Engine, delete, func, insert, select, tuple_
from sqlalchemy.orm import Session

from . import values
from .models import HistoryChunk, HistoryColumn

__all__ = [
    "CHUNK_ROWS", "DEFAULT_STREAM", "ENCODE_BLOCK", "ENCODINGS", "EVENTS_STREAM", "IPC_COMPRESSION",
    "MISSING", "SCAN_ROWS", "STEP", "append_arrow", "append_rows", "delete_history", "encode_column", "iter_pages",
    "keys", "last_step", "read_many_pandas", "read_rows", "row_count", "sample_indices",
    "sample_rows", "to_arrow", "to_pandas",
]

CHUNK_ROWS = 16_384
"""Rows per chunk (measured: see ``docs/history-layout.md``)."""
SCAN_ROWS = 65_536
"""Rows :func:`iter_pages` fetches per read session."""
IPC_COMPRESSION: str | None = None
"""Arrow IPC buffer compression (``None``, ``"lz4"``, ``"zstd"``); readers accept any."""
DEFAULT_STREAM = "default"
EVENTS_STREAM = "events"
STEP = "_step"
ENCODINGS = ("int64", "float64", "number", "bool", "string", "json")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EXACT_FLOAT_INT = 2**53
_JSON_META = {b"wandb_mirror.encoding": b"json"}

_CHUNKS = HistoryChunk.__table__
_COLUMNS = HistoryColumn.__table__

SessionSource = Union[Session, Engine, Callable[[], Any]]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<absent>"


MISSING: Any = _Missing()
"""Placeholder for "this row did not log this key" inside column lists."""


def _stream(stream: str) -> str:
    # The public client calls the system-metrics stream "system"; the store calls it "events".
    return EVENTS_STREAM if stream == "system" else stream


# --------------------------------------------------------------------------------- encoding


def _ipc(arrays: list[pa.Array], names: list[str]) -> bytes:
    batch = pa.record_batch(arrays, names=names)
    options = pa.ipc.IpcWriteOptions(compression=IPC_COMPRESSION)
    mock = pa.MockOutputStream()
    with pa.ipc.new_stream(mock, batch.schema, options=options) as writer:
        writer.write_batch(batch)
    buf = pa.allocate_buffer(mock.size())
    with pa.ipc.new_stream(pa.FixedSizeBufferWriter(buf), batch.schema, options=options) as writer:
        writer.write_batch(batch)
    return buf.to_pybytes()


def _unipc(data: bytes) -> pa.RecordBatch:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_next_batch()


def _json_array(vals: list[Any]) -> pa.Array:
    texts = [None if v is MISSING else values.dumps(v) for v in vals]
    try:
        return pa.array(texts, type=pa.string())
    except (pa.ArrowException, UnicodeEncodeError):
        # Lone surrogates cannot be UTF-8: escape them, loads() reads them back exactly.
        import json

        return pa.array([None if v is MISSING else json.dumps(v, allow_nan=True) for v in vals],
                        type=pa.string())


_Encoded = tuple[str, int, list[pa.Array]]  # (encoding, n_present, arrays)


def encode_column(vals: list[Any]) -> tuple[str, int, bytes]:
    """Encode one key's values over a chunk (``MISSING`` where absent).

    Returns:
        ``(encoding, n_present, Arrow IPC bytes)``.
    """
    encoding, present, arrays = _encode(vals)
    return encoding, present, _ipc(arrays, _names(encoding))


def _names(encoding: str) -> list[str]:
    return ["v", "is_int"] if encoding == "number" else ["v"]


def _encode(vals: list[Any]) -> _Encoded:
    kinds = set(map(type, vals))
    n_missing = 0
    if _Missing in kinds:
        kinds.discard(_Missing)
        n_missing = vals.count(MISSING)
        plain = [None if v is MISSING else v for v in vals]
    else:
        plain = vals
    present = len(vals) - n_missing
    arrays: list[pa.Array] | None = None
    encoding = "json"
    try:
        if kinds == {float}:
            encoding, arrays = "float64", [pa.array(plain, type=pa.float64())]
        elif kinds == {int}:
            encoding, arrays = "int64", [pa.array(plain, type=pa.int64())]
        elif kinds == {bool}:
            encoding, arrays = "bool", [pa.array(plain, type=pa.bool_())]
        elif kinds == {str}:
            encoding, arrays = "string", [pa.array(plain, type=pa.string())]
        elif kinds == {int, float}:
            ints = [type(v) is int for v in vals]
            if all(-_EXACT_FLOAT_INT <= v <= _EXACT_FLOAT_INT for v, i in zip(vals, ints) if i):
                encoding = "number"
                arrays = [pa.array(plain, type=pa.float64()), pa.array(ints, type=pa.bool_())]
    except (pa.ArrowException, OverflowError, UnicodeEncodeError):
        arrays = None  # ints beyond int64, lone surrogates: fall back to JSON
    if arrays is None:
        encoding, arrays = "json", [_json_array(vals)]
    return encoding, present, arrays


def _pad(enc: _Encoded, n: int) -> list[pa.Array]:
    """Arrays of ``n`` absent values shaped like ``enc``'s."""
    return [pa.array(np.zeros(n, dtype=bool)) if name == "is_int" else pa.nulls(n, a.type)
            for name, a in zip(_names(enc[0]), enc[2])]


def _concat(a: _Encoded | None, n_a: int, b: _Encoded | None, n_b: int) -> _Encoded:
    """The column of ``n_a`` rows then ``n_b`` rows (None: key absent from that part).

    Equal encodings are concatenated as Arrow arrays (no Python round trip of the values);
    different ones are decoded and re-encoded together.
    """
    if a is None or b is None:
        have = a if a is not None else b
        assert have is not None
        pad = _pad(have, n_b if a is not None else n_a)
        parts = zip(have[2], pad) if a is not None else zip(pad, have[2])
        return have[0], have[1], [pa.concat_arrays(list(p)) for p in parts]
    if a[0] == b[0]:
        return a[0], a[1] + b[1], [pa.concat_arrays([x, y]) for x, y in zip(a[2], b[2])]
    return _encode(_decode_list(a[0], pa.record_batch(a[2], names=_names(a[0])))
                   + _decode_list(b[0], pa.record_batch(b[2], names=_names(b[0]))))


ENCODE_BLOCK = 4096
"""Rows transposed and encoded at a time: small lists stay in CPU cache (2x faster ingest);
the blocks' arrays are then concatenated into the chunk's."""


def _encode_rows(rows: Sequence[dict[str, Any]], prefix: dict[str, _Encoded] | None = None,
                 n_prefix: int = 0) -> dict[str, _Encoded]:
    """Encode rows block by block, appended to ``prefix`` (a stored partial chunk's columns)."""
    out: dict[str, _Encoded] = dict(prefix or {})
    done = n_prefix
    for start in range(0, len(rows), ENCODE_BLOCK):
        block = rows[start: start + ENCODE_BLOCK]
        enc = {k: _encode(v) for k, v in _columnize(block).items()}
        for key in set(out) | set(enc):
            out[key] = _concat(out.get(key), done, enc.get(key), len(block))
        done += len(block)
    return out


def _decode_list(encoding: str, batch: pa.RecordBatch) -> list[Any]:
    """Python values of a column (``MISSING`` where absent)."""
    arr = batch.column(0)
    if encoding in ("int64", "float64", "bool", "number"):
        fill = {"int64": 0, "bool": False}.get(encoding, 0.0)
        out = (arr.fill_null(fill) if arr.null_count else arr).to_numpy(
            zero_copy_only=False).tolist()
        if encoding == "number":
            for pos in np.flatnonzero(batch.column(1).to_numpy(zero_copy_only=False)).tolist():
                out[pos] = int(out[pos])
    elif encoding == "string":
        out = arr.to_pylist()
    else:
        loads = values.loads
        out = [MISSING if s is None else loads(s) for s in arr.to_pylist()]
        return out
    if arr.null_count:
        for pos in np.flatnonzero(_valid(arr, len(arr)) == 0).tolist():
            out[pos] = MISSING
    return out


def _valid(arr: pa.Array, n: int) -> np.ndarray:
    if arr.null_count == 0:
        return np.ones(n, dtype=bool)
    return arr.is_valid().to_numpy(zero_copy_only=False)


# --------------------------------------------------------------------------------- writing


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building many containers.

    Allocating ~10**6 dicts/tuples triggers collections that rescan every live container; with
    them paused, transposing rows is ~3x faster. Nothing built here forms cycles.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _columnize(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows -> {key: values with MISSING}, transposed per key set (C loops for dense rows)."""
    n = len(rows)
    if not n:
        return {}
    sets = list(map(tuple, rows))
    first = sets[0]
    if sets.count(first) == n:
        return dict(zip(first, map(list, zip(*map(dict.values, rows))))) if first else {}
    names = dict.fromkeys(chain.from_iterable(set(sets)))
    if len(names) * n <= 4 * sum(map(len, sets)):
        # dict.get over every row, per key: a C loop, fine unless keys are very sparse.
        return {k: list(map(dict.get, rows, repeat(k, n), repeat(MISSING, n))) for k in names}
    out: dict[str, list[Any]] = {}
    for i, row in enumerate(rows):
        for key, value in row.items():
            col = out.get(key)
            if col is None:
                col = out[key] = [MISSING] * n
            col[i] = value
    return out


def _key_order(keys_: Any) -> list[str]:
    return sorted(keys_, key=lambda k: (k != STEP, k))


@dataclass
class _ChunkMeta:
    chunk_no: int
    min_step: int
    max_step: int
    n_rows: int


def _last_chunk(session: Session, run_pk: int, stream: str) -> _ChunkMeta | None:
    row = session.execute(
        select(_CHUNKS.c.chunk_no, _CHUNKS.c.min_step, _CHUNKS.c.max_step, _CHUNKS.c.n_rows)
        .where(_CHUNKS.c.run_pk == run_pk, _CHUNKS.c.stream == stream)
        .order_by(_CHUNKS.c.chunk_no.desc()).limit(1)
    ).first()
    return _ChunkMeta(*row) if row else None


def _clean_steps(rows: Sequence[dict[str, Any]], after: int | None) -> list[dict[str, Any]]:
    """Rows with an int ``_step`` > ``after``, in step order, first of each step kept."""
    try:
        steps = list(map(itemgetter(STEP), rows))
    except KeyError:
        raise ValueError("append_rows: every default-stream history row needs a '_step'") from None
    if set(map(type, steps)) - {int}:
        fixed = []
        for r, s in zip(rows, steps):
            if type(s) is not int:
                if isinstance(s, float) and s.is_integer() or isinstance(s, np.integer):
                    r = {**r, STEP: int(s)}
                else:
                    raise ValueError(f"append_rows: _step must be an integer, got {s!r}")
            fixed.append(r)
        rows, steps = fixed, [r[STEP] for r in fixed]
    arr = np.asarray(steps, dtype=object if steps and (
        max(steps) > _INT64_MAX or min(steps) < _INT64_MIN) else np.int64)
    if arr.dtype == object:
        raise ValueError("append_rows: _step must fit in int64")
    floor = after if after is not None else _INT64_MIN
    if len(arr) and arr[0] > floor and bool(np.all(np.diff(arr) > 0)):
        return list(rows)
    order = np.argsort(arr, kind="stable")
    out: list[dict[str, Any]] = []
    last = floor if after is not None else None
    for i in order.tolist():
        s = steps[i]
        if last is None or s > last:
            out.append(rows[i])
            last = s
    return out


def append_rows(session: Session, run_pk: int, rows: Sequence[dict[str, Any]],
        stream: str = DEFAULT_STREAM, *, first_ordinal: int | None = None) -> int:
    """Append history rows to a run, in the caller's transaction.

    Default stream: rows must carry an integer ``_step`` (integral floats are accepted); rows
    whose step is <= the stored last step, and repeated steps within ``rows``, are skipped, so
    re-syncing a page is safe. Rows are stored in step order.

    Other streams (``"events"``, alias ``"system"``): rows have no ``_step``; they are numbered
    internally. Pass ``first_ordinal`` (the position of ``rows[0]`` in the upstream stream) to
    make re-syncs safe: rows before the stored row count are skipped.

    The last partial chunk is filled before new chunks are started.

    Returns:
        The number of rows appended.

    Raises:
        ValueError: a default-stream row has no integer ``_step``; ``first_ordinal`` leaves a gap.
    """
    with _gc_paused():
        return _append(session, run_pk, rows, _stream(stream), first_ordinal)


def _append(session: Session, run_pk: int, rows: Sequence[dict[str, Any]], stream: str,
            first_ordinal: int | None) -> int:
    last = _last_chunk(session, run_pk, stream)
    if stream == DEFAULT_STREAM:
        new = _clean_steps(rows, last.max_step if last else None)
    else:
        have = row_count(session, run_pk, stream)
        skip = 0
        if first_ordinal is not None:
            if first_ordinal > have:
                raise ValueError(f"append_rows: first_ordinal {first_ordinal} leaves a gap after "
                                 f"{have} stored {stream} rows of run {run_pk}")
            skip = have - first_ordinal
        new = list(rows[skip:])
    if not new:
        return 0
    pos = 0
    if last is not None and last.n_rows < CHUNK_ROWS:
        take = new[: CHUNK_ROWS - last.n_rows]
        merged = _encode_rows(take, _read_chunk(session, run_pk, stream, last.chunk_no),
                              last.n_rows)
        n_rows = last.n_rows + len(take)
        for table in (_COLUMNS, _CHUNKS):
            session.execute(delete(table).where(
                table.c.run_pk == run_pk, table.c.stream == stream,
                table.c.chunk_no == last.chunk_no))
        hi = take[-1][STEP] if stream == DEFAULT_STREAM else last.min_step + n_rows - 1
        _write_chunk(session, run_pk, stream, last.chunk_no, merged, n_rows, last.min_step, hi)
        pos = len(take)
        next_no, next_ord = last.chunk_no + 1, last.min_step + n_rows
    elif last is not None:
        next_no, next_ord = last.chunk_no + 1, last.max_step + 1
    else:
        next_no, next_ord = 0, 0
    while pos < len(new):
        part = new[pos: pos + CHUNK_ROWS]
        if stream == DEFAULT_STREAM:
            lo, hi = part[0][STEP], part[-1][STEP]
        else:
            lo, hi = next_ord, next_ord + len(part) - 1
        encoded = _encode_rows(part)
        _write_chunk(session, run_pk, stream, next_no, encoded, len(part), lo, hi)
        next_no += 1
        next_ord += len(part)
        pos += len(part)
    return len(new)


def append_arrow(session: Session, run_pk: int, table: pa.Table) -> int:
    """Append default-stream rows given as an Arrow table (a parquet history export), columnar.

    The fast path of :func:`append_rows` for bulk ingest: numeric, boolean and string columns
    go into chunks as Arrow arrays without building per-row dicts; nulls are absent keys;
    columns marked ``wandb_mirror.encoding = json`` (this project's own exports) are decoded.
    Rows at or below the stored last step are skipped; the last partial chunk is filled
    first (through :func:`append_rows`).

    Returns:
        The number of rows appended.

    Raises:
        ValueError: no integer ``_step`` column, or repeated steps.
    """
    if STEP not in table.column_names:
        raise ValueError("append_arrow: a history table needs a '_step' column")
    steps = table.column(STEP)
    if steps.null_count or not (pa.types.is_integer(steps.type) or pa.types.is_floating(steps.type)):
        raise ValueError("append_arrow: '_step' must be integers without nulls")
    step_np = steps.to_numpy().astype(np.int64)
    if len(step_np) and not np.array_equal(step_np, steps.to_numpy()):
        raise ValueError("append_arrow: '_step' must be integral")
    order = np.argsort(step_np, kind="stable")
    if len(order) and np.any(np.diff(step_np[order]) <= 0):
        raise ValueError("append_arrow: repeated '_step' values")
    last = _last_chunk(session, run_pk, DEFAULT_STREAM)
    keep = order[step_np[order] > last.max_step] if last else order
    if not len(keep):
        return 0
    table = table.take(pa.array(keep)).set_column(
        table.column_names.index(STEP), STEP, pa.array(step_np[keep], type=pa.int64()))
    json_cols = {f.name for f in table.schema
                 if f.metadata and f.metadata.get(b"wandb_mirror.encoding") == b"json"}
    done = 0
    if last is not None and last.n_rows < CHUNK_ROWS:  # fill the partial chunk the slow way
        head = table.slice(0, CHUNK_ROWS - last.n_rows)
        done = append_rows(session, run_pk, _arrow_rows(head, json_cols))
        last = _last_chunk(session, run_pk, DEFAULT_STREAM)
    next_no = 0 if last is None else last.chunk_no + 1
    with _gc_paused():
        while done < table.num_rows:
            part = table.slice(done, CHUNK_ROWS)
            cols = {name: enc for name in part.column_names
                    if (enc := _encode_arrow(part.column(name), name in json_cols)) is not None}
            step_col = part.column(STEP)
            _write_chunk(session, run_pk, DEFAULT_STREAM, next_no, cols, part.num_rows,
                         int(step_col[0].as_py()), int(step_col[-1].as_py()))
            next_no += 1
            done += part.num_rows
    return table.num_rows


def _arrow_rows(table: pa.Table, json_cols: set[str]) -> list[dict[str, Any]]:
    rows = []
    for rec in table.to_pylist():
        row = {k: v for k, v in rec.items() if v is not None}
        for name in json_cols & row.keys():
            row[name] = values.loads(row[name])
        rows.append(row)
    return rows


def _encode_arrow(col: pa.ChunkedArray, is_json: bool) -> _Encoded | None:
    """One column of a chunk from Arrow (None when the key is absent from every row)."""
    n = len(col)
    present = n - col.null_count
    if present == 0:
        return None
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    t = arr.type
    if not is_json:
        if pa.types.is_floating(t):
            return "float64", present, [arr.cast(pa.float64())]
        if pa.types.is_integer(t) and not pa.types.is_uint64(t):
            return "int64", present, [arr.cast(pa.int64())]
        if pa.types.is_boolean(t):
            return "bool", present, [arr]
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return "string", present, [arr.cast(pa.string())]
    vals = arr.to_pylist()
    loads = values.loads if is_json else None
    return _encode([MISSING if v is None else (loads(v) if loads else v) for v in vals])


def _write_chunk(session: Session, run_pk: int, stream: str, chunk_no: int,
                 cols: dict[str, _Encoded], n_rows: int, lo: int, hi: int) -> None:
    session.execute(insert(_CHUNKS), [{
        "run_pk": run_pk, "stream": stream, "chunk_no": chunk_no, "min_step": lo,
        "max_step": hi, "n_rows": n_rows}])
    session.execute(insert(_COLUMNS), [
        {"run_pk": run_pk, "stream": stream, "chunk_no": chunk_no, "key": key,
         "encoding": cols[key][0], "n_present": cols[key][1],
         "data": _ipc(cols[key][2], _names(cols[key][0]))}
        for key in _key_order(cols)])


def _read_chunk(session: Session, run_pk: int, stream: str, chunk_no: int
                ) -> dict[str, _Encoded]:
    return {key: (encoding, present, _unipc(data).columns) for key, encoding, present, data in
            session.execute(select(
                _COLUMNS.c.key, _COLUMNS.c.encoding, _COLUMNS.c.n_present, _COLUMNS.c.data
            ).where(_COLUMNS.c.run_pk == run_pk, _COLUMNS.c.stream == stream,
                    _COLUMNS.c.chunk_no == chunk_no))}


def delete_history(session: Session, run_pk: int, stream: str | None = None) -> None:
    """Delete a run's history (every stream, or just ``stream``)."""
    for table in (_COLUMNS, _CHUNKS):
        cond = [table.c.run_pk == run_pk]
        if stream is not None:
            cond.append(table.c.stream == _stream(stream))
        session.execute(delete(table).where(*cond))


# --------------------------------------------------------------------------------- metadata


def last_step(session: Session, run_pk: int, stream: str = DEFAULT_STREAM) -> int | None:
    """The last stored ``_step`` of the default stream, or None when there is none.

    Raises:
        ValueError: for a stream without steps (``events``): use :func:`row_count`.
    """
    stream = _stream(stream)
    if stream != DEFAULT_STREAM:
        raise ValueError(f"the {stream!r} history stream has no _step; use row_count()")
    last = _last_chunk(session, run_pk, stream)
    return last.max_step if last else None


def row_count(session: Session, run_pk: int, stream: str = DEFAULT_STREAM) -> int:
    """Number of stored rows of a run's stream."""
    total = session.scalar(select(func.sum(_CHUNKS.c.n_rows)).where(
        _CHUNKS.c.run_pk == run_pk, _CHUNKS.c.stream == _stream(stream)))
    return int(total or 0)


def keys(session: Session, run_pk: int, stream: str = DEFAULT_STREAM) -> dict[str, dict[str, Any]]:
    """Keys of a run's stream: ``{key: {"count": rows holding it, "encodings": [...]}}``."""
    out: dict[str, dict[str, Any]] = {}
    for key, encoding, n in session.execute(
        select(_COLUMNS.c.key, _COLUMNS.c.encoding, func.sum(_COLUMNS.c.n_present))
        .where(_COLUMNS.c.run_pk == run_pk, _COLUMNS.c.stream == _stream(stream))
        .group_by(_COLUMNS.c.key, _COLUMNS.c.encoding)
    ):
        entry = out.setdefault(key, {"count": 0, "encodings": []})
        entry["count"] += int(n or 0)
        entry["encodings"].append(encoding)
    for entry in out.values():
        entry["encodings"].sort()
    return {k: out[k] for k in _key_order(out)}


# --------------------------------------------------------------------------------- reading


@dataclass
class _Chunk:
    """One decoded chunk: row positions (step or ordinal) and its key columns."""

    meta: _ChunkMeta
    positions: np.ndarray
    cols: dict[str, tuple[str, pa.RecordBatch]] = field(default_factory=dict)

    def valid(self, key: str) -> np.ndarray:
        col = self.cols.get(key)
        if col is None:
            return np.zeros(self.meta.n_rows, dtype=bool)
        return _valid(col[1].column(0), self.meta.n_rows)


def _load_chunks(session: Session, run_pks: Sequence[int], stream: str, keys_: Sequence[str] | None,
                 lo: int | None, hi: int | None, limit: int | None = None,
                 ) -> dict[int, list[_Chunk]]:
    """Chunks overlapping [lo, hi) of each run, decoded (zero-copy), with the wanted keys."""
    cond = [_CHUNKS.c.run_pk.in_(list(run_pks)), _CHUNKS.c.stream == stream]
    if lo is not None:
        cond.append(_CHUNKS.c.max_step >= lo)
    if hi is not None:
        cond.append(_CHUNKS.c.min_step < hi)
    query = select(_CHUNKS.c.run_pk, _CHUNKS.c.chunk_no, _CHUNKS.c.min_step, _CHUNKS.c.max_step,
                   _CHUNKS.c.n_rows).where(*cond).order_by(_CHUNKS.c.run_pk, _CHUNKS.c.chunk_no)
    if limit is not None:
        query = query.limit(limit)
    metas = session.execute(query).all()
    if not metas:
        return {}
    chunks: dict[tuple[int, int], _Chunk] = {}
    out: dict[int, list[_Chunk]] = {}
    for run_pk, no, mn, mx, n in metas:
        chunk = _Chunk(_ChunkMeta(no, mn, mx, n), np.empty(0, dtype=np.int64))
        chunks[(run_pk, no)] = chunk
        out.setdefault(run_pk, []).append(chunk)
    ccond = [_COLUMNS.c.run_pk.in_(list(out)), _COLUMNS.c.stream == stream]
    if len(out) == 1:
        (only,) = out.values()
        ccond.append(_COLUMNS.c.chunk_no.between(only[0].meta.chunk_no, only[-1].meta.chunk_no))
    steps_needed: list[tuple[int, int]] = []
    if stream == DEFAULT_STREAM:
        # A chunk whose steps are consecutive needs no _step blob: positions are a range.
        for (run_pk, no), chunk in chunks.items():
            m = chunk.meta
            if m.max_step - m.min_step + 1 == m.n_rows:
                chunk.positions = np.arange(m.min_step, m.max_step + 1, dtype=np.int64)
                chunk.cols[STEP] = ("int64", pa.record_batch([pa.array(chunk.positions)],
                                                             names=["v"]))
            else:
                steps_needed.append((run_pk, no))
        ccond.append(_COLUMNS.c.key != STEP)
    if keys_ is not None:
        ccond.append(_COLUMNS.c.key.in_(sorted(set(keys_) - {STEP})))
    queries = [select(_COLUMNS.c.run_pk, _COLUMNS.c.chunk_no, _COLUMNS.c.key,
                      _COLUMNS.c.encoding, _COLUMNS.c.data).where(*ccond)]
    if steps_needed:
        queries.append(select(_COLUMNS.c.run_pk, _COLUMNS.c.chunk_no, _COLUMNS.c.key,
                              _COLUMNS.c.encoding, _COLUMNS.c.data).where(
            tuple_(_COLUMNS.c.run_pk, _COLUMNS.c.chunk_no).in_(steps_needed),
            _COLUMNS.c.stream == stream, _COLUMNS.c.key == STEP))
    for query in queries:
        for run_pk, no, key, encoding, data in session.execute(query):
            chunk = chunks.get((run_pk, no))
            if chunk is not None:
                chunk.cols[key] = (encoding, _unipc(data))
    for chunk in chunks.values():
        m = chunk.meta
        if stream == DEFAULT_STREAM:
            if len(chunk.positions) != m.n_rows:
                chunk.positions = chunk.cols[STEP][1].column(0).to_numpy(zero_copy_only=False)
        else:
            chunk.positions = np.arange(m.min_step, m.min_step + m.n_rows, dtype=np.int64)
    return out


def _select(chunk: _Chunk, keys_: Sequence[str] | None, lo: int | None, hi: int | None,
            union: bool) -> np.ndarray:
    """Row indices of a chunk within [lo, hi) holding all (or, union, any) of ``keys_``."""
    pos = chunk.positions
    a = 0 if lo is None else int(np.searchsorted(pos, lo, "left"))
    b = len(pos) if hi is None else int(np.searchsorted(pos, hi, "left"))
    if a >= b:
        return np.empty(0, dtype=np.int64)
    wanted = [k for k in (keys_ or ()) if k != STEP or STEP not in chunk.cols]
    if not wanted:
        return np.arange(a, b, dtype=np.int64)
    masks = [chunk.valid(k)[a:b] for k in wanted]
    mask = np.logical_or.reduce(masks) if union else np.logical_and.reduce(masks)
    return np.flatnonzero(mask) + a


def _out_keys(chunk: _Chunk, keys_: Sequence[str] | None) -> list[str]:
    if keys_ is None:
        return _key_order(chunk.cols)
    order = ([STEP] if STEP in chunk.cols else []) + [k for k in keys_ if k != STEP]
    return [k for k in dict.fromkeys(order) if k in chunk.cols]


def _rows(chunk: _Chunk, idx: np.ndarray, keys_: Sequence[str] | None) -> list[dict[str, Any]]:
    """Row dicts for positions ``idx``: ``dict(zip())`` over the keys every row holds, then the
    sparse keys set only where present (so cost follows the values actually stored)."""
    if len(idx) == 0:
        return []
    full = len(idx) == chunk.meta.n_rows
    dense_names: list[str] = []
    dense_lists: list[list[Any]] = []
    sparse: list[tuple[str, list[Any], list[int]]] = []
    for name in _out_keys(chunk, keys_):
        encoding, batch = chunk.cols[name]
        sub = batch if full else batch.take(pa.array(idx))
        vals = _decode_list(encoding, sub)
        arr = sub.column(0)
        if arr.null_count == 0:
            dense_names.append(name)
            dense_lists.append(vals)
        elif arr.null_count < len(arr):
            sparse.append((name, vals, np.flatnonzero(_valid(arr, len(arr))).tolist()))
    if dense_lists:
        out = [dict(zip(dense_names, t)) for t in zip(*dense_lists)]
    else:
        out = [{} for _ in range(len(idx))]
    for name, vals, present in sparse:
        for p in present:
            out[p][name] = vals[p]
    return out


def read_rows(session: Session, run_pk: int, *, keys: Sequence[str] | None = None,
        min_step: int | None = None, max_step: int | None = None, stream: str = DEFAULT_STREAM,
        union: bool = False) -> list[dict[str, Any]]:
    """Exact rows in step order, ``min_step <= _step < max_step`` (max EXCLUSIVE).

    Each row holds only the keys it was logged with. With ``keys`` (W&B semantics): only rows
    holding ALL of them, each with just those keys plus ``_step``; ``union=True`` takes rows
    holding ANY of them (the keys a row lacks are left out). For the ``events`` stream the
    bounds are row ordinals.
    """
    stream = _stream(stream)
    out: list[dict[str, Any]] = []
    with _gc_paused():
        for chunk in _load_chunks(session, [run_pk], stream, keys, min_step, max_step).get(
                run_pk, []):
            out.extend(_rows(chunk, _select(chunk, keys, min_step, max_step, union), keys))
    return out


@contextmanager
def _reading(source: SessionSource) -> Iterator[Session]:
    if isinstance(source, Session):
        yield source
    elif isinstance(source, Engine):
        with Session(source) as session:
            yield session
    else:
        made = source()
        if isinstance(made, Session):
            with made:
                yield made
        else:
            with made as session:
                yield session


def iter_pages(source: SessionSource, run_pk: int, *, keys: Sequence[str] | None = None,
        page_size: int = 1000, min_step: int = 0, max_step: int | None = None,
        stream: str = DEFAULT_STREAM, union: bool = False) -> Iterator[list[dict[str, Any]]]:
    """Pages of exact rows for ``scan_history``, in step order, ``min_step <= _step < max_step``.

    ``source`` is an Engine (a short read session per few chunks, so no long snapshot is held),
    a Session, or a factory returning a Session / session context manager. Every page but the
    last holds ``page_size`` rows (never an empty page); rows appended while scanning appear
    if they fall after the scan's position. Row semantics are those of :func:`read_rows`.
    """
    if page_size < 1:
        raise ValueError("page_size must be >= 1")
    stream = _stream(stream)
    cursor = min_step
    buffer: list[dict[str, Any]] = []
    while max_step is None or cursor < max_step:
        with _reading(source) as session:
            # One round trip per ~64k rows: few queries, bounded memory.
            loaded = _load_chunks(session, [run_pk], stream, keys, cursor, max_step,
                                  limit=max(1, SCAN_ROWS // CHUNK_ROWS)).get(run_pk, [])
        if not loaded:
            break
        for chunk in loaded:
            with _gc_paused():
                buffer.extend(_rows(chunk, _select(chunk, keys, cursor, max_step, union), keys))
            start = 0
            while len(buffer) - start >= page_size:
                yield buffer[start: start + page_size]
                start += page_size
            del buffer[:start]
        cursor = loaded[-1].meta.max_step + 1
    if buffer:
        yield buffer


def sample_indices(count: int, samples: int) -> np.ndarray:
    """Evenly spaced indices into ``count`` candidates: all when ``count <= samples``, else
    ``samples`` distinct indices always including the first and the last."""
    if samples <= 0 or count <= 0:
        return np.empty(0, dtype=np.int64)
    if count <= samples:
        return np.arange(count, dtype=np.int64)
    if samples == 1:
        return np.zeros(1, dtype=np.int64)
    # Spacing (count-1)/(samples-1) > 1, so rounding keeps the indices distinct.
    return np.rint(np.linspace(0, count - 1, samples)).astype(np.int64)


def _sampled(chunks: list[_Chunk], keys_: Sequence[str] | None, lo: int | None, hi: int | None,
             union: bool, samples: int | None) -> list[tuple[_Chunk, np.ndarray]]:
    picks = [(c, _select(c, keys_, lo, hi, union)) for c in chunks]
    if samples is None:
        return picks
    total = sum(len(i) for _, i in picks)
    chosen = sample_indices(total, samples)
    out, offset = [], 0
    for chunk, idx in picks:
        a, b = np.searchsorted(chosen, [offset, offset + len(idx)])
        if b > a:
            out.append((chunk, idx[chosen[a:b] - offset]))
        offset += len(idx)
    return out


def sample_rows(session: Session, run_pk: int, *, keys: Sequence[str] | None = None,
        samples: int = 500, stream: str = DEFAULT_STREAM, min_step: int | None = None,
        max_step: int | None = None, union: bool = False) -> list[dict[str, Any]]:
    """Deterministic sample of at most ``samples`` rows (``max_step`` EXCLUSIVE).

    Candidates are the rows of :func:`read_rows` with the same arguments; when there are more
    than ``samples`` of them, evenly spaced ones are kept, always the first and the last.
    """
    stream = _stream(stream)
    chunks = _load_chunks(session, [run_pk], stream, keys, min_step, max_step).get(run_pk, [])
    out: list[dict[str, Any]] = []
    for chunk, idx in _sampled(chunks, keys, min_step, max_step, union, samples):
        out.extend(_rows(chunk, idx, keys))
    return out


# --------------------------------------------------------------------------------- columnar


def _piece(chunk: _Chunk, key: str, idx: np.ndarray) -> tuple[str, pa.RecordBatch | None, int]:
    """``(encoding, batch at idx, length)`` of one key in one chunk (``absent``: no batch)."""
    col = chunk.cols.get(key)
    if col is None:
        return "absent", None, len(idx)
    encoding, batch = col
    if len(idx) != chunk.meta.n_rows:
        batch = batch.take(pa.array(idx))
    return encoding, batch, len(idx)


_ARROW_TYPES = {"int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(),
                "string": pa.string()}


def _column(pieces: list[tuple[str, pa.RecordBatch | None, int]]) -> tuple[pa.ChunkedArray, bool]:
    """One key's column over all pieces with a sensible type (see :func:`to_arrow`), and
    whether it holds JSON text."""
    encs = {e for e, _, _ in pieces} - {"absent"}
    only = next(iter(encs)) if len(encs) == 1 else None
    if only in _ARROW_TYPES or encs <= {"int64", "float64", "number"}:
        t = _ARROW_TYPES.get(only or "", pa.float64())
        return pa.chunked_array([pa.nulls(n, t) if b is None else b.column(0).cast(t)
                                 for _, b, n in pieces], type=t), False
    # Mixed or JSON: numbers only -> float64, else JSON text marked in the field metadata.
    pyvals: list[Any] = []
    for enc, batch, n in pieces:
        pyvals.extend([MISSING] * n if batch is None else _decode_list(enc, batch))
    if all(type(v) in (int, float) or v is None or v is MISSING for v in pyvals):
        return pa.chunked_array([pa.array(
            [None if v is MISSING or v is None else float(v) for v in pyvals],
            type=pa.float64())]), False
    return pa.chunked_array([_json_array(pyvals)]), True


def _table(chunks: list[tuple[_Chunk, np.ndarray]], keys_: Sequence[str] | None,
           stream: str) -> pa.Table:
    if keys_ is not None:
        names = ([STEP] if stream == DEFAULT_STREAM else []) + list(
            dict.fromkeys(k for k in keys_ if k != STEP))
    else:
        names = _key_order({k for chunk, _ in chunks for k in chunk.cols})
    fields, cols = [], []
    for k in names:
        col, is_json = _column([_piece(c, k, idx) for c, idx in chunks])
        fields.append(pa.field(k, col.type, metadata=_JSON_META if is_json else None))
        cols.append(col)
    return pa.table(cols, schema=pa.schema(fields))


def to_arrow(session: Session, run_pk: int, *, keys: Sequence[str] | None = None,
        stream: str = DEFAULT_STREAM, min_step: int | None = None, max_step: int | None = None,
        union: bool = False, samples: int | None = None) -> pa.Table:
    """A run's history as an Arrow table (``max_step`` EXCLUSIVE), one column per key.

    Rows: all rows, or with ``keys`` those holding all (``union``: any) of them; ``samples``
    subsamples like :func:`sample_rows`. Types: ``_step`` int64; int64/float64/bool/string
    when a key is homogeneous, float64 when it mixes ints and floats (big ints lose precision
    here, :func:`read_rows` is exact); other keys (dicts, lists, mixed types) are JSON text with
    field metadata ``wandb_mirror.encoding = json``. Missing values are nulls.
    """
    stream = _stream(stream)
    chunks = _load_chunks(session, [run_pk], stream, keys, min_step, max_step).get(run_pk, [])
    return _table(_sampled(chunks, keys, min_step, max_step, union, samples), keys, stream)


def _objects(items: Any) -> np.ndarray:
    vals = list(items)
    arr = np.empty(len(vals), dtype=object)
    for i, v in enumerate(vals):  # element-wise: lists must stay list objects, not a 2-D array
        arr[i] = v
    return arr


def _to_frame(table: pa.Table) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for f, col in zip(table.schema, table.columns):
        if f.metadata and f.metadata.get(b"wandb_mirror.encoding") == b"json":
            # dtype=object explicitly: pandas would otherwise infer "str" for all-string values
            data[f.name] = pd.Series(_objects(math.nan if s is None else values.loads(s)
                                              for s in col.to_pylist()), dtype=object)
        elif f.type == pa.bool_() and col.null_count:
            data[f.name] = pd.Series(_objects(math.nan if v is None else v
                                              for v in col.to_pylist()), dtype=object)
        else:
            data[f.name] = col.to_pandas()
    return pd.DataFrame(data, columns=table.column_names)


def to_pandas(session: Session, run_pk: int, *, keys: Sequence[str] | None = None,
        stream: str = DEFAULT_STREAM, min_step: int | None = None, max_step: int | None = None,
        union: bool = False, samples: int | None = None) -> pd.DataFrame:
    """:func:`to_arrow` as a DataFrame: missing numbers NaN, ints with gaps float64, JSON keys
    as object columns of Python values (NaN where missing, as ``DataFrame.from_records``)."""
    return _to_frame(to_arrow(session, run_pk, keys=keys, stream=stream, min_step=min_step,
                              max_step=max_step, union=union, samples=samples))


def read_many_pandas(session: Session, run_pks: Sequence[int], *, keys: Sequence[str],
        samples: int | None = None, union: bool = False, stream: str = DEFAULT_STREAM,
        min_step: int | None = None, max_step: int | None = None,
        run_column: str = "run_pk") -> pd.DataFrame:
    """Histories of many runs in one DataFrame (``run_column`` first, then ``_step`` and keys).

    All runs' columns are fetched with one query. Per run, rows are those of :func:`to_pandas`
    with the same ``keys``/``union``/``samples``; runs keep the order of ``run_pks``.
    """
    stream = _stream(stream)
    order = list(dict.fromkeys(run_pks))
    loaded = _load_chunks(session, order, stream, keys, min_step, max_step)
    picks: list[tuple[_Chunk, np.ndarray]] = []
    owners: list[int] = []
    counts: list[int] = []
    for run_pk in order:
        for chunk, idx in _sampled(loaded.get(run_pk, []), keys, min_step, max_step, union,
                                   samples):
            picks.append((chunk, idx))
            owners.append(run_pk)
            counts.append(len(idx))
    # One Arrow table over every run's pieces: one type per key, one DataFrame, no concat.
    frame = _to_frame(_table(picks, keys, stream))
    frame.insert(0, run_column, np.repeat(np.asarray(owners, dtype=np.int64),
                                          np.asarray(counts, dtype=np.int64)))
    return frame
