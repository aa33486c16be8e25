"""Sampled history read in place (store.history_sample): the same rows as sampling the exact
rows of ``read_rows``, whatever the mix of dense, sparse, typed and JSON keys, step gaps, ranges,
``union`` and IPC compression; dense numeric columns are read by slices, not whole."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wandb_mirror.store import history as H
from wandb_mirror.store import history_read, history_sample, open_store, session_scope
from wandb_mirror.store.runs import upsert_project, upsert_runs

from .odd_values import ODD_FLOATS, same

FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = open_store(tmp_path_factory.mktemp("history_sample") / "store.db")
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(H, "CHUNK_ROWS", 9)
    monkeypatch.setattr(H, "ENCODE_BLOCK", 4)
    monkeypatch.setattr(history_sample, "SLICE_MAX_PICKS", 3)  # both branches in small runs


_counter = iter(range(10**9))


def new_run(engine, rows: list[dict[str, Any]], stream: str = "default") -> int:
    with session_scope(engine) as s:
        project = upsert_project(s, "e", "sample")
        run = upsert_runs(s, project, [{"name": f"run{next(_counter)}"}])[0].pk
        H.append_rows(s, run, rows, stream)
    return run


def exactly(got: list[dict[str, Any]], want: list[dict[str, Any]], order: bool = True) -> None:
    """Same rows, same value types (NaN, -0.0 included), same key order unless ``order=False``."""
    assert [sorted(r) for r in got] == [sorted(r) for r in want]
    assert all(same(g[k], w[k]) for g, w in zip(got, want) for k in w), (got, want)
    if order:
        assert [list(r) for r in got] == [list(r) for r in want]


def expected(s, run: int, samples: int, **kw: Any) -> list[dict[str, Any]]:
    """The candidates of read_rows, sampled. (A row's key order may differ from sample_rows':
    keys every picked row of a chunk holds come first, as they always did.)"""
    cand = H.read_rows(s, run, **kw)
    return [cand[i] for i in H.sample_indices(len(cand), samples).tolist()]


def generic(monkeypatch, s, run: int, **kw: Any) -> list[dict[str, Any]]:
    """sample_rows through the path other databases take: whole columns, as before slices."""
    with monkeypatch.context() as m:
        m.setattr(history_sample, "_sqlite", lambda session: None)
        return H.sample_rows(s, run, **kw)


VALUE = st.one_of(st.floats(), ODD_FLOATS, st.integers(-(2**63), 2**63 - 1), st.booleans(),
                  st.text(max_size=3), st.none(), st.lists(st.integers(), max_size=2))


@st.composite
def history(draw) -> list[dict[str, Any]]:
    """Dense float/int keys, keys logged on some rows, a key of odd values, step gaps."""
    n = draw(st.integers(1, 45))
    gaps = draw(st.lists(st.sampled_from([1, 1, 1, 2, 7]), min_size=n, max_size=n))
    every = draw(st.sampled_from([1, 2, 3]))
    steps = np.cumsum(gaps).tolist()
    rows = []
    for i, step in enumerate(steps):
        row: dict[str, Any] = {"_step": step, "f": draw(st.floats()), "i": i * 3 - 7}
        if i % every == 0:
            row["s"] = float(i)
        if draw(st.booleans()):
            row["odd"] = draw(VALUE)
        rows.append(row)
    return rows


KEYS = st.one_of(st.none(), st.lists(st.sampled_from(["f", "i", "s", "odd", "_step", "nope"]),
                                     max_size=3, unique=True))


@FUZZ
@given(rows=history(), keys=KEYS, union=st.booleans(), samples=st.integers(1, 80),
       lo=st.one_of(st.none(), st.integers(0, 120)), span=st.one_of(st.none(), st.integers(0, 90)))
def test_sample_rows_equals_sampling_read_rows(engine, monkeypatch, rows, keys, union, samples,
                                              lo, span):
    run = new_run(engine, rows)
    hi = None if span is None else (lo or 0) + span
    kw = dict(keys=keys, min_step=lo, max_step=hi, union=union)
    with session_scope(engine) as s:
        got = H.sample_rows(s, run, samples=samples, **kw)
        exactly(got, expected(s, run, samples, **kw), order=False)
        exactly(got, generic(monkeypatch, s, run, samples=samples, **kw))


def test_events_stream_and_the_generic_path(engine, monkeypatch):
    ev = [{"_timestamp": 1.7e9 + i, "_runtime": float(i), "system.cpu": i % 3,
           **({"gpu": 0.5} if i % 4 else {})} for i in range(40)]
    run = new_run(engine, ev, "events")
    dense = new_run(engine, [{"_step": i, "loss": 1.0 / (i + 1)} for i in range(100)])
    cases = [(run, dict(stream="events", samples=6)),
             (run, dict(stream="system", keys=["gpu"], samples=5)),
             (run, dict(stream="events", keys=["_runtime", "gpu"], union=True, samples=9,
                        min_step=3, max_step=30)),
             (dense, dict(keys=["loss"], samples=10, min_step=5)),
             (dense, dict(samples=3))]
    with session_scope(engine) as s:
        for r, kw in cases:
            got = H.sample_rows(s, r, **kw)
            exactly(got, generic(monkeypatch, s, r, **kw))
            samples = kw.pop("samples")
            exactly(got, expected(s, r, samples, **kw), order=False)


def _count_whole_reads(monkeypatch) -> list[int]:
    calls: list[int] = []
    for module in (history_sample, history_read):
        real = module._unipc

        def counting(data, real=real):
            calls.append(len(data))
            return real(data)
        monkeypatch.setattr(module, "_unipc", counting)
    return calls


def test_dense_numeric_columns_are_read_by_slices(engine, monkeypatch):
    rows = [{"_step": 3 * i, "loss": 0.5 ** (i % 50), "n": i, "tag": "x"} for i in range(200)]
    run = new_run(engine, rows)
    whole = _count_whole_reads(monkeypatch)
    with session_scope(engine) as s:
        got = H.sample_rows(s, run, keys=["loss", "n"], samples=12)
    assert whole == []  # _step (gaps), loss and n: slices only
    exactly(got, [{k: r[k] for k in ("_step", "loss", "n")}
                  for r in (rows[i] for i in H.sample_indices(200, 12).tolist())])
    with session_scope(engine) as s:
        H.sample_rows(s, run, keys=["tag"], samples=12)
    assert len(whole) == 12  # strings are read whole, one column per picked chunk


def test_compressed_store_falls_back_to_whole_columns(engine, monkeypatch):
    pytest.importorskip("pyarrow").Codec("lz4")
    monkeypatch.setattr(H, "IPC_COMPRESSION", "lz4")
    rows = [{"_step": i, "loss": float(i) * 0.25, "n": -i} for i in range(0, 300, 2)]
    run = new_run(engine, rows)
    monkeypatch.setattr(H, "IPC_COMPRESSION", None)
    whole = _count_whole_reads(monkeypatch)
    with session_scope(engine) as s:
        got = H.sample_rows(s, run, keys=["loss", "n"], samples=7)
        exactly(got, expected(s, run, 7, keys=["loss", "n"]))
    assert whole  # the stored headers say "compressed": no slice is trusted


def test_candidate_counts_at_the_edges(engine, monkeypatch):
    """Keys missing on one row per chunk, on all rows, logged once; union with absent keys."""
    rows = []
    for i in range(50):
        row: dict[str, Any] = {"_step": 100 + i, "dense": i / 4}
        if i % 9 != 4:
            row["almost"] = i  # absent from exactly one row of most chunks
        if i == 31:
            row["once"] = 1.5
        rows.append(row)
    run = new_run(engine, rows)
    keysets = [["almost"], ["dense", "almost"], ["once"], ["dense", "nope"], ["nope", "almost"],
               ["nope"], ["once", "nope"], ["_step"], ["_step", "once"]]
    with session_scope(engine) as s:
        for keys in keysets:
            for union in (False, True):
                for samples, lo, hi in ((4, None, None), (50, None, None), (3, 104, 140),
                                        (2, 131, 132)):
                    kw = dict(keys=keys, union=union, min_step=lo, max_step=hi)
                    got = H.sample_rows(s, run, samples=samples, **kw)
                    exactly(got, generic(monkeypatch, s, run, samples=samples, **kw))
                    exactly(got, expected(s, run, samples, **kw), order=False)
