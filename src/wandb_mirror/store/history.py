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

Modules: this one holds the tunables (set them here), the write path, the key/step metadata and
the paged scan, and re-exports the read path (:mod:`.history_read`: rows, Arrow, pandas;
:mod:`.history_sample`: sampled rows); encodings and chunk metadata are in :mod:`.history_format`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, Union

import numpy as np
import pyarrow as pa
from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.orm import Session

from . import values
from .history_format import (
    _CHUNKS, _COLUMNS, _INT64_MAX, _INT64_MIN, DEFAULT_STREAM, ENCODINGS, EVENTS_STREAM, MISSING,
    STEP, _concat, _encode, _Encoded, _gc_paused, _ipc, _key_order, _last_chunk, _names, _stream,
    _unipc,
)
from .history_read import (
    _load_chunks, _rows, _select, read_many_pandas, read_rows, sample_indices, to_arrow,
    to_pandas,
)
from .history_sample import sample_rows

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

SessionSource = Union[Session, Engine, Callable[[], Any]]


# --------------------------------------------------------------------------------- encoding


def encode_column(vals: list[Any]) -> tuple[str, int, bytes]:
    """Encode one key's values over a chunk (``MISSING`` where absent).

    Returns:
        ``(encoding, n_present, Arrow IPC bytes)``.
    """
    encoding, present, arrays = _encode(vals)
    return encoding, present, _ipc(arrays, _names(encoding), IPC_COMPRESSION)


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



# --------------------------------------------------------------------------------- writing


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
         "data": _ipc(cols[key][2], _names(cols[key][0]), IPC_COMPRESSION)}
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
