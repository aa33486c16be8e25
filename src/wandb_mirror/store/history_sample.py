"""Deterministic sampled history (``run.history(samples=N)``) that reads only what it returns.

Which rows a sample keeps depends only on how many candidate rows each chunk holds (evenly spaced
over all candidates, first and last kept: :func:`~wandb_mirror.store.history_read.sample_indices`),
and for most chunks that count is known without reading a value: ``history_chunks`` has each
chunk's row count and step range, ``history_columns.n_present`` each key's non-null count. A
requested key that is absent from a chunk leaves no candidates (all of ``keys``; ``union``: when
every key is absent); when every requested key is dense (``union``: any), every row in the step
range is a candidate. Only the remaining chunks (keys logged on some of their rows) are read
whole, to learn which rows hold the keys.

The chosen rows' values are then read without loading the chunks: a dense ``int64``/``float64``
column is an uncompressed Arrow IPC stream whose value buffer starts at a fixed offset, so on
SQLite the values at a few positions are read through incremental blob I/O
(``sqlite3.Connection.blobopen``), 8 bytes each, inside the session's read transaction. The
offset is not trusted blindly: the stored bytes before it (the IPC schema and record-batch
headers, which fix every buffer's offset, length, null count and compression) must equal those
of a reference column of the same type and length written by this code's writer; any other
column (strings, JSON, bools, ints mixed with floats, keys with nulls, a compressed store, an
older writer) is read whole, as is every column of a chunk where many rows are picked. Rows come
out exactly as :func:`~wandb_mirror.store.history_read.read_rows` builds them (same keys, values,
types and order): the picked values are handed to the same row builder.

Measured with ``bench/api_bench.py`` (B', ``bench/RESULTS.md``): a first
``history(keys=[2 keys], samples=500)`` on a 1M-step run reads 1,000 slices of 8 bytes (and 124
headers) instead of 62 x 2 whole columns (16 MB).
"""
from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy.orm import Session

from .engine import translate_db_error
from .history_format import DEFAULT_STREAM, STEP, _ChunkMeta, _ipc, _stream, _unipc
from .history_read import (
    _Chunk, _dicts, _load_chunks, _out_keys, _rows, _sampled, sample_indices,
)

__all__ = ["SLICE_MAX_PICKS", "sample_rows"]

SLICE_MAX_PICKS = 256
"""A chunk with more picked rows than this has its columns read whole (one read beats many)."""

_FIXED = {"int64": ("<i8", pa.int64()), "float64": ("<f8", pa.float64())}

_ColMeta = tuple[int, str, int]  # a stored column: (rowid, encoding, n_present)


def sample_rows(session: Session, run_pk: int, *, keys: Sequence[str] | None = None,
        samples: int = 500, stream: str = DEFAULT_STREAM, min_step: int | None = None,
        max_step: int | None = None, union: bool = False) -> list[dict[str, Any]]:
    """Deterministic sample of at most ``samples`` rows (``max_step`` EXCLUSIVE).

    Candidates are the rows of :func:`~wandb_mirror.store.history.read_rows` with the same
    arguments; when there are more than ``samples`` of them, evenly spaced ones are kept,
    always the first and the last. On SQLite only the kept values are read where the layout
    allows (module docstring); elsewhere the requested columns are read whole.
    """
    stream = _stream(stream)
    con = _sqlite(session)
    if con is not None:
        try:
            return _sample_sliced(session, con, run_pk, keys, samples, stream, min_step,
                                  max_step, union)
        except sqlite3.Error as exc:  # raw driver calls: translate as session_scope would
            raise translate_db_error(exc, f"sampling the history of run {run_pk}") from exc
    chunks = _load_chunks(session, [run_pk], stream, keys, min_step, max_step).get(run_pk, [])
    out: list[dict[str, Any]] = []
    for chunk, idx in _sampled(chunks, keys, min_step, max_step, union, samples):
        out.extend(_rows(chunk, idx, keys))
    return out


def _sqlite(session: Session) -> sqlite3.Connection | None:
    """The session's sqlite3 connection (in its read transaction), or None on other databases."""
    bind = session.get_bind()
    if bind.dialect.name != "sqlite":
        return None
    driver = session.connection().connection.driver_connection
    return driver if isinstance(driver, sqlite3.Connection) else None


def _sample_sliced(session: Session, con: sqlite3.Connection, run_pk: int,
                   keys_: Sequence[str] | None, samples: int, stream: str, lo: int | None,
                   hi: int | None, union: bool) -> list[dict[str, Any]]:
    """:func:`sample_rows` on SQLite: count candidates from metadata, then read the picks."""
    default = stream == DEFAULT_STREAM
    sql = ("SELECT chunk_no, min_step, max_step, n_rows FROM history_chunks"
           " WHERE run_pk = ? AND stream = ?")
    params: list[Any] = [run_pk, stream]
    if lo is not None:
        sql += " AND max_step >= ?"
        params.append(lo)
    if hi is not None:
        sql += " AND min_step < ?"
        params.append(hi)
    metas = [_ChunkMeta(*r) for r in con.execute(sql + " ORDER BY chunk_no", params)]
    if not metas:
        return []
    # The columns a row may hold, as _load_chunks would load them (its _step rule included).
    sql = ("SELECT rowid, chunk_no, key, encoding, n_present FROM history_columns"
           " WHERE run_pk = ? AND stream = ? AND chunk_no BETWEEN ? AND ?")
    params = [run_pk, stream, metas[0].chunk_no, metas[-1].chunk_no]
    if keys_ is not None:
        names = sorted((set(keys_) - {STEP}) | ({STEP} if default else set()))
        sql += f" AND key IN ({', '.join('?' * len(names))})"
        params += names
    cols: dict[int, dict[str, _ColMeta]] = {m.chunk_no: {} for m in metas}
    for rowid, no, key, encoding, present in con.execute(sql, params):
        if no in cols:
            cols[no][key] = (rowid, encoding, present)

    # Candidates per chunk: a row range [a, b) when known from the metadata, else loaded.
    ranges: dict[int, tuple[int, int]] = {}
    unknown: list[int] = []
    for m in metas:
        ccols = cols[m.chunk_no]
        consecutive = not default or m.max_step - m.min_step + 1 == m.n_rows
        a, b = 0, m.n_rows
        if lo is not None and lo > m.min_step or hi is not None and hi <= m.max_step:
            if not consecutive:
                unknown.append(m.chunk_no)
                continue
            a = 0 if lo is None else min(max(lo - m.min_step, 0), m.n_rows)
            b = m.n_rows if hi is None else min(max(hi - m.min_step, 0), m.n_rows)
        wanted = [k for k in (keys_ or ()) if k != STEP or not default]
        if wanted:
            present = [ccols[k][2] if k in ccols else 0 for k in wanted]
            dense = [p >= m.n_rows for p in present]
            if not (any(present) if union else all(present)):
                a = b = 0
            elif not (any(dense) if union else all(dense)):
                unknown.append(m.chunk_no)
                continue
        ranges[m.chunk_no] = (a, max(a, b))
    loaded = {c.meta.chunk_no: c for c in _load_chunks(
        session, [run_pk], stream, keys_, lo, hi, only=unknown).get(run_pk, [])} if unknown else {}

    picks: list[tuple[_ChunkMeta, np.ndarray | tuple[int, int]]] = []
    total = 0
    for m in metas:
        if m.chunk_no in loaded:
            chunk = loaded[m.chunk_no]
            idx = _sampled([chunk], keys_, lo, hi, union, None)[0][1]
            picks.append((m, idx))
            total += len(idx)
        else:
            a, b = ranges.get(m.chunk_no, (0, 0))
            picks.append((m, (a, b)))
            total += b - a
    chosen = sample_indices(total, samples)
    out: list[dict[str, Any]] = []
    offset = 0
    for m, cand in picks:
        n = len(cand) if isinstance(cand, np.ndarray) else cand[1] - cand[0]
        i, j = np.searchsorted(chosen, [offset, offset + n])
        local = chosen[i:j] - offset
        offset += n
        if not len(local):
            continue
        if isinstance(cand, np.ndarray):
            out.extend(_rows(loaded[m.chunk_no], cand[local], keys_))
        else:
            out.extend(_picked_rows(con, m, cols[m.chunk_no], local + cand[0], keys_, default))
    return out


def _picked_rows(con: sqlite3.Connection, m: _ChunkMeta, ccols: dict[str, _ColMeta],
                 idx: np.ndarray, keys_: Sequence[str] | None,
                 default: bool) -> list[dict[str, Any]]:
    """Rows at positions ``idx`` of a chunk, reading only those values where possible."""
    sliced: dict[str, tuple[str, np.ndarray]] = {}
    whole: dict[int, str] = {}
    few = len(idx) <= SLICE_MAX_PICKS
    for key, (rowid, encoding, present) in ccols.items():
        if default and key == STEP and m.max_step - m.min_step + 1 == m.n_rows:
            sliced[STEP] = ("int64", idx + m.min_step)
            continue
        vals = (_read_slices(con, rowid, encoding, m.n_rows, idx)
                if few and present >= m.n_rows and encoding in _FIXED else None)
        if vals is None:
            whole[rowid] = key
        else:
            sliced[key] = (encoding, vals)
    if not whole:
        # Every column dense and numeric: the rows _rows() would build, without Arrow.
        names = _out_keys(sliced, keys_)
        return _dicts(names, [sliced[k][1].tolist() for k in names], len(idx))
    sub = _Chunk(_ChunkMeta(m.chunk_no, m.min_step, m.max_step, len(idx)),
                 np.empty(0, dtype=np.int64))
    for key, (encoding, vals) in sliced.items():
        sub.cols[key] = (encoding, pa.record_batch([pa.array(vals, type=_FIXED[encoding][1])],
                                                   names=["v"]))
    marks = ", ".join("?" * len(whole))
    take = pa.array(idx)
    for rowid, encoding, data in con.execute(
            f"SELECT rowid, encoding, data FROM history_columns WHERE rowid IN ({marks})",
            list(whole)):
        sub.cols[whole[rowid]] = (encoding, _unipc(data).take(take))
    return _rows(sub, np.arange(len(idx)), keys_)


def _read_slices(con: sqlite3.Connection, rowid: int, encoding: str, n_rows: int,
                 idx: np.ndarray) -> np.ndarray | None:
    """Values at ``idx`` of a dense fixed-width column, read in place (None: not that layout)."""
    header, size, width = _layout(encoding, n_rows)
    body = len(header)
    with con.blobopen("history_columns", "data", rowid, readonly=True) as blob:
        if len(blob) != size or blob[:body] != header:
            return None
        data = b"".join([blob[body + width * p: body + width * (p + 1)] for p in idx.tolist()])
    return np.frombuffer(data, dtype=_FIXED[encoding][0])


@lru_cache(maxsize=64)
def _layout(encoding: str, n_rows: int) -> tuple[bytes, int, int]:
    """``(bytes before the value buffer, blob size, value width)`` of a dense uncompressed
    column of ``n_rows`` values as this module's writer lays it out.

    Two reference columns, all-0x00 and all-0xFF bytes, differ exactly over the value buffer.
    """
    _, arrow_type = _FIXED[encoding]
    width = 8
    refs = [_ipc([pa.Array.from_buffers(arrow_type, n_rows, [None, pa.py_buffer(
        fill * (width * n_rows))])], ["v"], None) for fill in (b"\x00", b"\xff")]
    start = next(i for i, (x, y) in enumerate(zip(*refs)) if x != y)
    assert refs[0][start + width * n_rows:] == refs[1][start + width * n_rows:]
    return refs[0][:start], len(refs[0]), width
