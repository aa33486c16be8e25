"""Reading run history: exact rows, deterministic samples, Arrow tables and DataFrames.

The layout is described in :mod:`wandb_mirror.store.history` (which re-exports the public
names of this module); step ranges are ``min_step`` inclusive, ``max_step`` EXCLUSIVE.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from . import values
from .history_format import (
    _CHUNKS, _COLUMNS, _JSON_META, DEFAULT_STREAM, MISSING, STEP, _ChunkMeta, _decode_list,
    _gc_paused, _json_array, _key_order, _stream, _unipc, _valid,
)

__all__ = ["read_many_pandas", "read_rows", "sample_indices", "to_arrow", "to_pandas"]


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
                 only: Sequence[int] | None = None) -> dict[int, list[_Chunk]]:
    """Chunks overlapping [lo, hi) of each run (``only``: just these chunk numbers), decoded
    (zero-copy), with the wanted keys."""
    cond = [_CHUNKS.c.run_pk.in_(list(run_pks)), _CHUNKS.c.stream == stream]
    if only is not None:
        cond.append(_CHUNKS.c.chunk_no.in_(list(only)))
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
    if only is not None:
        ccond.append(_COLUMNS.c.chunk_no.in_(list(only)))
    elif len(out) == 1:
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


def _out_keys(have: Collection[str], keys_: Sequence[str] | None) -> list[str]:
    """The keys rows of a chunk holding columns ``have`` show, in order."""
    if keys_ is None:
        return _key_order(have)
    order = ([STEP] if STEP in have else []) + [k for k in keys_ if k != STEP]
    return [k for k in dict.fromkeys(order) if k in have]


ROW_MAKER_MAX_KEYS = 256
"""Up to this many keys held by every row, rows are built by a generated function."""


@lru_cache(maxsize=1024)
def _row_maker(names: tuple[str, ...]) -> Callable[..., dict[str, Any]]:
    """``f(v1, v2, ...) -> {names[0]: v1, names[1]: v2, ...}``.

    A dict display is the fastest way CPython builds a dict (one presized map, no zip or tuple
    per row); ``map(f, *columns)`` then makes the rows in one C loop, ~1.5x the speed of
    ``dict(zip(names, row))`` (bench/api_bench.py D). The names enter the source as ``repr()``
    literals, which read back as the same strings whatever they hold.
    """
    args = [f"v{i}" for i in range(len(names))]
    body = ", ".join(f"{name!r}: {arg}" for name, arg in zip(names, args))
    return eval(f"lambda {', '.join(args)}: {{{body}}}", {"__builtins__": {}})  # noqa: S307


def _dicts(names: list[str], columns: list[list[Any]], n: int) -> list[dict[str, Any]]:
    """``n`` rows ``{names[0]: columns[0][i], ...}``."""
    if not names:
        return [{} for _ in range(n)]
    if len(names) > ROW_MAKER_MAX_KEYS:
        return [dict(zip(names, t)) for t in zip(*columns)]
    return list(map(_row_maker(tuple(names)), *columns))


def _rows(chunk: _Chunk, idx: np.ndarray, keys_: Sequence[str] | None) -> list[dict[str, Any]]:
    """Row dicts for positions ``idx``: the keys every row holds first (one generated dict
    display per row), then the sparse keys set only where present (so cost follows the values
    actually stored)."""
    if len(idx) == 0:
        return []
    full = len(idx) == chunk.meta.n_rows
    dense_names: list[str] = []
    dense_lists: list[list[Any]] = []
    sparse: list[tuple[str, list[Any], list[int]]] = []
    for name in _out_keys(chunk.cols, keys_):
        encoding, batch = chunk.cols[name]
        sub = batch if full else batch.take(pa.array(idx))
        vals = _decode_list(encoding, sub)
        arr = sub.column(0)
        if arr.null_count == 0:
            dense_names.append(name)
            dense_lists.append(vals)
        elif arr.null_count < len(arr):
            sparse.append((name, vals, np.flatnonzero(_valid(arr, len(arr))).tolist()))
    out = _dicts(dense_names, dense_lists, len(idx))
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
    subsamples like :func:`~wandb_mirror.store.history.sample_rows`. Types: ``_step`` int64; int64/float64/bool/string
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
