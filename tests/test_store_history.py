"""Run history in the column-chunked layout: exact round trips, incremental appends, step
ranges, W&B ``keys`` semantics, deterministic sampling, events, and the columnar fast paths."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wandb_mirror.store import history as H
from wandb_mirror.store import open_store, session_scope
from wandb_mirror.store.runs import upsert_project, upsert_runs

from .odd_values import BIG_INTS, JSON_VALUES, KEYS, ODD_FLOATS, same

FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = open_store(tmp_path_factory.mktemp("history") / "store.db")
    yield eng
    eng.dispose()


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    # Small chunks so that every test crosses chunk boundaries and fills partial chunks.
    monkeypatch.setattr(H, "CHUNK_ROWS", 7)
    monkeypatch.setattr(H, "ENCODE_BLOCK", 3)
    monkeypatch.setattr(H, "SCAN_ROWS", 15)


_counter = iter(range(10**9))


def new_run(engine) -> int:
    with session_scope(engine) as s:
        project = upsert_project(s, "e", "history")
        return upsert_runs(s, project, [{"name": f"run{next(_counter)}"}])[0].pk


def same_rows(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> bool:
    """Exact equality of rows (value types, NaN, -0.0), ignoring the order of a row's keys."""
    return len(got) == len(want) and all(
        set(g) == set(w) and all(same(g[k], w[k]) for k in w) for g, w in zip(got, want))


def append(engine, run_pk: int, rows, stream: str = "default", **kw) -> int:
    with session_scope(engine) as s:
        return H.append_rows(s, run_pk, rows, stream, **kw)


def read(engine, run_pk: int, **kw) -> list[dict[str, Any]]:
    with session_scope(engine) as s:
        return H.read_rows(s, run_pk, **kw)


ODD = st.one_of(JSON_VALUES, ODD_FLOATS, BIG_INTS, st.booleans(), st.none(),
                st.integers(-(2**63), 2**63 - 1), st.floats())
ROW = st.dictionaries(KEYS.filter(lambda k: k != "_step"), ODD, max_size=5)
TYPED = st.one_of(  # per-key homogeneous values, so typed encodings get exercised too
    st.lists(st.floats(), min_size=1, max_size=1), st.lists(st.integers(), min_size=1, max_size=1),
    st.lists(st.booleans(), min_size=1, max_size=1), st.lists(st.text(max_size=4), min_size=1,
                                                              max_size=1))


@st.composite
def histories(draw) -> list[dict[str, Any]]:
    start = draw(st.integers(-5, 2**40))
    gaps = draw(st.lists(st.integers(1, 1000), min_size=0, max_size=30))
    steps = [start]
    for g in gaps:
        steps.append(steps[-1] + g)
    typed_key = draw(st.sampled_from(["m", "opt.lr", "ünï"]))
    typed = draw(TYPED)[0]
    make = type(typed)
    rows = []
    for step in steps:
        row = draw(ROW)
        if draw(st.booleans()):
            row[typed_key] = make(draw(st.integers(-3, 3))) if make is not str else str(step)
        rows.append({"_step": step, **row})
    return rows


@FUZZ
@given(rows=histories(), cut=st.integers(0, 40))
def test_odd_values_round_trip_and_incremental_equals_one_shot(engine, rows, cut):
    one, inc = new_run(engine), new_run(engine)
    assert append(engine, one, rows) == len(rows)
    assert append(engine, inc, rows[:cut]) + append(engine, inc, rows[cut:]) == len(rows)
    got_one, got_inc = read(engine, one), read(engine, inc)
    assert same_rows(got_one, rows)
    assert same_rows(got_inc, rows)
    with session_scope(engine) as s:
        assert H.last_step(s, one) == rows[-1]["_step"]
        assert H.row_count(s, inc) == len(rows)
        pages = [r for p in H.iter_pages(s, inc, page_size=3, min_step=-(2**62)) for r in p]
    assert same_rows(pages, rows)


def test_specific_odd_values_and_encodings(engine):
    rows = [
        {"_step": 0, "nan": math.nan, "inf": math.inf, "ninf": -math.inf, "neg0": -0.0,
         "i": 2**63 - 1, "big": 2**63, "small": -(2**63), "huge": -(2**63) - 1, "b": True,
         "mix": 1, "null": None, "s": "ünï🚀", "a.b": 1.5, "h": {"_type": "histogram",
         "values": [1, 2], "bins": [0.0, 0.5, 1.0]}, "lst": [1, [2, {"x": None}]],
         "deep": {"a": {"b": {"c": {"d": [math.nan]}}}}},
        {"_step": 1, "b": False, "mix": 0.5, "i": -1, "s": "", "null": None},
        {"_step": 2, "mix": 2, "b": 1},
    ]
    run = new_run(engine)
    append(engine, run, rows)
    assert same_rows(read(engine, run), rows)
    with session_scope(engine) as s:
        ks = H.keys(s, run)
    assert ks["_step"] == {"count": 3, "encodings": ["int64"]}
    assert ks["nan"]["encodings"] == ["float64"] and ks["i"]["encodings"] == ["int64"]
    assert ks["mix"] == {"count": 3, "encodings": ["number"]}
    assert ks["b"]["encodings"] == ["json"]  # True/False/1: bool and int mixed
    assert ks["big"]["encodings"] == ["json"] and ks["null"]["encodings"] == ["json"]
    assert ks["s"] == {"count": 2, "encodings": ["string"]}
    assert ks["null"]["count"] == 2  # explicit nulls are present values


def test_absent_is_not_null(engine):
    run = new_run(engine)
    append(engine, run, [{"_step": 0, "a": None}, {"_step": 1}, {"_step": 2, "a": 1.0}])
    got = read(engine, run)
    assert got[0] == {"_step": 0, "a": None} and got[1] == {"_step": 1} and "a" not in got[1]


def test_duplicates_and_old_steps_are_skipped(engine):
    run = new_run(engine)
    rows = [{"_step": i, "x": float(i)} for i in range(20)]
    assert append(engine, run, rows[:12]) == 12
    assert append(engine, run, rows[5:15]) == 3
    assert append(engine, run, rows[:15]) == 0
    assert append(engine, run, [rows[19], rows[16], {"_step": 16, "x": -1.0}, rows[15]]) == 3
    got = read(engine, run)
    assert [r["_step"] for r in got] == [*range(17), 19]
    assert got[16]["x"] == 16.0  # first of a repeated step wins
    with session_scope(engine) as s:
        assert H.row_count(s, run) == 18 and H.last_step(s, run) == 19


def test_float_steps_and_bad_steps(engine):
    run = new_run(engine)
    assert append(engine, run, [{"_step": 0.0, "x": 1}, {"_step": np.int64(1), "x": 2}]) == 2
    assert read(engine, run)[0] == {"_step": 0, "x": 1}
    assert type(read(engine, run)[0]["_step"]) is int
    with pytest.raises(ValueError, match="_step"):
        append(engine, run, [{"x": 1}])
    with pytest.raises(ValueError, match="_step"):
        append(engine, run, [{"_step": 2.5}])


def test_last_partial_chunk_is_filled(engine):
    run = new_run(engine)
    for i in range(0, 30, 4):
        append(engine, run, [{"_step": j, "x": j} for j in range(i, min(30, i + 4))])
    with session_scope(engine) as s:
        from sqlalchemy import select
        from wandb_mirror.store.models import HistoryChunk
        sizes = s.scalars(select(HistoryChunk.n_rows).where(HistoryChunk.run_pk == run)
                          .order_by(HistoryChunk.chunk_no)).all()
    assert sizes == [7, 7, 7, 7, 2]


@pytest.fixture(scope="module")
def sparse_run(engine):
    """Steps 10, 12, ..., 108: 'a' on every row, 'b' on every third, 'c' on every fifth."""
    run = new_run(engine)
    rows = []
    for i, step in enumerate(range(10, 110, 2)):
        row: dict[str, Any] = {"_step": step, "a": float(i)}
        if i % 3 == 0:
            row["b"] = i
        if i % 5 == 0:
            row["c"] = {"_type": "histogram", "v": [i]}
        rows.append(row)
    with session_scope(engine) as s:
        H.append_rows(s, run, rows)
    return run, rows


def test_step_range_is_min_inclusive_max_exclusive(engine, sparse_run):
    run, rows = sparse_run
    got = read(engine, run, min_step=14, max_step=20)
    assert [r["_step"] for r in got] == [14, 16, 18]
    assert read(engine, run, min_step=15, max_step=16) == []
    assert same_rows(read(engine, run, max_step=13), rows[:2])
    assert same_rows(read(engine, run, min_step=107), rows[-1:])


def test_keys_and_semantics_and_union(engine, sparse_run):
    run, rows = sparse_run
    got = read(engine, run, keys=["b", "c"])
    want = [{"_step": r["_step"], "b": r["b"], "c": r["c"]} for r in rows if "b" in r and "c" in r]
    assert got == want and len(want) == 4
    assert read(engine, run, keys=["b", "nope"]) == []
    union = read(engine, run, keys=["b", "c"], union=True)
    assert union == [{k: r[k] for k in ("_step", "b", "c") if k in r}
                     for r in rows if "b" in r or "c" in r]
    assert read(engine, run, keys=["_step"]) == [{"_step": r["_step"]} for r in rows]


def test_iter_pages_by_engine_session_and_factory(engine, sparse_run):
    run, rows = sparse_run
    from sqlalchemy.orm import sessionmaker
    for source in (engine, sessionmaker(engine), lambda: session_scope(engine)):
        pages = list(H.iter_pages(source, run, page_size=4, min_step=20, max_step=90))
        assert all(len(p) == 4 for p in pages[:-1]) and 0 < len(pages[-1]) <= 4
        assert [r for p in pages for r in p] == [r for r in rows if 20 <= r["_step"] < 90]
    keyed = [r for p in H.iter_pages(engine, run, keys=["b"], page_size=5) for r in p]
    assert keyed == [{"_step": r["_step"], "b": r["b"]} for r in rows if "b" in r]


@given(count=st.integers(0, 3000), samples=st.integers(1, 800))
def test_sample_indices(count, samples):
    idx = H.sample_indices(count, samples)
    assert len(idx) == min(count, samples)
    assert len(set(idx.tolist())) == len(idx) and list(idx) == sorted(idx)
    if count and samples >= 2:
        assert idx[0] == 0 and idx[-1] == count - 1


def test_sample_rows_deterministic_first_last(engine, sparse_run):
    run, rows = sparse_run
    with session_scope(engine) as s:
        a = H.sample_rows(s, run, keys=["a"], samples=7)
        b = H.sample_rows(s, run, keys=["a"], samples=7)
        assert a == b and len(a) == 7
        assert a[0]["_step"] == 10 and a[-1]["_step"] == 108
        steps = [r["_step"] for r in a]
        assert steps == sorted(set(steps))
        cand = [r for r in rows if "b" in r]
        got = H.sample_rows(s, run, keys=["b"], samples=5)
        assert got[0]["_step"] == cand[0]["_step"] and got[-1]["_step"] == cand[-1]["_step"]
        assert H.sample_rows(s, run, keys=["b", "c"], samples=500) == H.read_rows(
            s, run, keys=["b", "c"])
        assert len(H.sample_rows(s, run, samples=10)) == 10
        ranged = H.sample_rows(s, run, keys=["a"], samples=3, min_step=20, max_step=40)
        assert [r["_step"] for r in ranged] == [20, 28, 38]
        assert H.sample_rows(s, run, keys=["b", "c"], union=True, samples=1000) == H.read_rows(
            s, run, keys=["b", "c"], union=True)


def test_events_stream_has_no_step(engine):
    run = new_run(engine)
    ev = [{"_timestamp": 1.7e9 + i, "_runtime": float(i), "system.cpu": i % 3}
          for i in range(17)]
    assert append(engine, run, ev[:5], "events") == 5
    assert append(engine, run, ev[3:], "events", first_ordinal=3) == 12
    assert append(engine, run, ev, "system", first_ordinal=0) == 0
    with pytest.raises(ValueError, match="gap"):
        append(engine, run, ev, "events", first_ordinal=99)
    got = read(engine, run, stream="events")
    assert same_rows(got, ev) and all("_step" not in r for r in got)
    assert read(engine, run, stream="system", min_step=2, max_step=4) == ev[2:4]
    with session_scope(engine) as s:
        assert H.row_count(s, run, "events") == 17 and H.row_count(s, run) == 0
        assert "_step" not in H.keys(s, run, "events")
        with pytest.raises(ValueError):
            H.last_step(s, run, "events")
        frame = H.to_pandas(s, run, stream="events")
        assert "_step" not in frame.columns and len(frame) == 17
        H.delete_history(s, run, "events")
        assert H.row_count(s, run, "events") == 0


def test_to_pandas_dtypes_and_values(engine):
    run = new_run(engine)
    rows = [{"_step": i, "f": i / 3, "i": i, "gi": i, "b": i % 2 == 0, "s": f"s{i}",
             "mix": i if i % 2 else i + 0.5, "h": {"_type": "histogram", "v": [i]}}
            for i in range(20)]
    for r in rows[::4]:
        del r["gi"]
    rows[3]["any"] = "x"
    rows[5]["any"] = 2
    append(engine, run, rows)
    with session_scope(engine) as s:
        df = H.to_pandas(s, run)
        table = H.to_arrow(s, run)
    assert list(df.columns) == ["_step", "any", "b", "f", "gi", "h", "i", "mix", "s"]
    assert df["_step"].dtype == np.int64 and df["i"].dtype == np.int64
    assert df["f"].dtype == np.float64 and df["mix"].dtype == np.float64
    assert df["gi"].dtype == np.float64 and math.isnan(df["gi"][0]) and df["gi"][1] == 1.0
    assert df["b"].dtype == bool and df["h"].dtype == object and df["h"][3] == rows[3]["h"]
    assert df["any"][3] == "x" and df["any"][5] == 2 and pd.isna(df["any"][0])
    assert df["s"].tolist() == [r["s"] for r in rows]
    assert table.schema.field("h").metadata == {b"wandb_mirror.encoding": b"json"}
    assert table.column("_step").type.equals(__import__("pyarrow").int64())
    ref = pd.DataFrame.from_records(rows)
    for col in ("f", "i", "gi", "mix", "b"):
        pd.testing.assert_series_equal(df[col], ref[col], check_names=False)
    with session_scope(engine) as s:
        keyed = H.to_pandas(s, run, keys=["gi", "f"])
        sampled = H.to_pandas(s, run, keys=["f"], samples=4)
    assert list(keyed.columns) == ["_step", "gi", "f"] and len(keyed) == 15
    assert sampled["_step"].tolist() == [0, 6, 13, 19]


def test_mixed_keys_stay_exact_in_object_columns(engine):
    run = new_run(engine)
    rows = [{"_step": i, "m": v} for i, v in enumerate([1, 0.5, 2, "x", None, 2**70, True])]
    rows.append({"_step": 7, "s": "lone \ud800 surrogate"})
    append(engine, run, rows)
    assert same_rows(read(engine, run), rows)
    with session_scope(engine) as s:
        df = H.to_pandas(s, run)
        nums = H.to_pandas(s, run, max_step=3)
    got = df["m"].tolist()
    assert [type(v) for v in got[:7]] == [int, float, int, str, type(None), int, bool]
    assert got[5] == 2**70 and pd.isna(got[7])
    assert nums["m"].dtype == np.float64 and nums["m"].tolist() == [1.0, 0.5, 2.0]


def test_read_many_pandas(engine):
    runs = [new_run(engine) for _ in range(3)]
    for n, run in enumerate(runs):
        append(engine, run, [{"_step": i, "loss": 1 / (i + 1), "acc": i * (n + 1)}
                             for i in range(10 + n)])
    with session_scope(engine) as s:
        df = H.read_many_pandas(s, [runs[2], runs[0], runs[1]], keys=["loss", "acc"])
        sampled = H.read_many_pandas(s, runs, keys=["loss"], samples=3)
        empty = H.read_many_pandas(s, [new_run(engine)], keys=["loss"])
    assert list(df.columns) == ["run_pk", "_step", "loss", "acc"]
    assert df["run_pk"].tolist() == [runs[2]] * 12 + [runs[0]] * 10 + [runs[1]] * 11
    assert df["acc"].dtype == np.int64 and df["_step"].dtype == np.int64
    assert df[df.run_pk == runs[1]]["acc"].tolist() == [2 * i for i in range(11)]
    assert sampled.groupby("run_pk")["_step"].apply(list).to_dict() == {
        runs[0]: [0, 4, 9], runs[1]: [0, 5, 10], runs[2]: [0, 6, 11]}
    assert len(empty) == 0 and list(empty.columns) == ["run_pk", "_step", "loss"]


def test_delete_history_and_transaction_rollback(engine):
    run = new_run(engine)
    append(engine, run, [{"_step": i} for i in range(10)])
    with pytest.raises(RuntimeError):
        with session_scope(engine) as s:
            H.append_rows(s, run, [{"_step": i, "x": 1} for i in range(10, 30)])
            raise RuntimeError("boom")
    with session_scope(engine) as s:
        assert H.row_count(s, run) == 10 and H.last_step(s, run) == 9
        H.delete_history(s, run)
        assert H.row_count(s, run) == 0 and H.last_step(s, run) is None
        assert H.read_rows(s, run) == [] and len(H.to_pandas(s, run)) == 0


@pytest.mark.parametrize("max_keys, n_many", [(256, 0), (256, 300), (3, 0)])
def test_rows_with_odd_and_many_keys(engine, monkeypatch, max_keys, n_many):
    # Rows are built by a generated function over the keys every row holds (or dict(zip) past
    # ROW_MAKER_MAX_KEYS): odd key spellings must come back exactly, in the same key order.
    from wandb_mirror.store import history_read
    monkeypatch.setattr(history_read, "ROW_MAKER_MAX_KEYS", max_keys)
    odd = ["'", '"', "\\", "}", "{", "lambda", "v0", "__builtins__", "", "a b", "é\n"]
    many = [f"k{i:03d}" for i in range(n_many)] or ["k007"]
    run = new_run(engine)
    rows = [{"_step": i, **{k: f"{k}-{i}" for k in odd}, **{k: i for k in many},
             **({"sparse": i} if i % 3 else {})} for i in range(20)]
    append(engine, run, rows)
    got = read(engine, run)
    assert same_rows(got, rows)
    assert [k for k in got[0] if k != "_step"] == sorted(set(rows[0]) - {"_step"})
    assert read(engine, run, keys=["}", "k007"]) == [
        {"_step": r["_step"], "}": r["}"], "k007": r["k007"]} for r in rows]
