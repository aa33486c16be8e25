"""The history chunk format: value encodings, Arrow IPC (de)serialisation, chunk metadata.

Pure pieces shared by the write path (:mod:`wandb_mirror.store.history`) and the read path
(:mod:`wandb_mirror.store.history_read`); the layout itself is described in the former's
docstring. Tunables (chunk size, IPC compression...) live in :mod:`wandb_mirror.store.history`
so that setting them there takes effect everywhere.
"""
from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import values
from .models import HistoryChunk, HistoryColumn

__all__ = ["DEFAULT_STREAM", "ENCODINGS", "EVENTS_STREAM", "MISSING", "STEP"]

DEFAULT_STREAM = "default"
EVENTS_STREAM = "events"
STEP = "_step"
ENCODINGS = ("int64", "float64", "number", "bool", "string", "json")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EXACT_FLOAT_INT = 2**53
_JSON_META = {b"wandb_mirror.encoding": b"json"}

_CHUNKS = HistoryChunk.__table__
_COLUMNS = HistoryColumn.__table__


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


def _ipc(arrays: list[pa.Array], names: list[str], compression: str | None) -> bytes:
    batch = pa.record_batch(arrays, names=names)
    options = pa.ipc.IpcWriteOptions(compression=compression)
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


