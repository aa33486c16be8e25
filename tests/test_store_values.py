"""Odd values round-trip exactly through the store (raw columns and the value index)."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from wandb_mirror.store import open_store, session_scope
from wandb_mirror.store import values as V
from wandb_mirror.store.models import Run, RunValue
from wandb_mirror.store.runs import run_node, upsert_project, upsert_runs

from .odd_values import JSON_VALUES, KEYS, same


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = open_store(tmp_path_factory.mktemp("values") / "store.db")
    yield eng
    eng.dispose()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=st.dictionaries(KEYS, JSON_VALUES, max_size=6),
       summary=st.dictionaries(KEYS, JSON_VALUES, max_size=6),
       tags=st.lists(st.text(max_size=5), max_size=3))
def test_odd_values_round_trip_through_store(engine, config, summary, tags):
    wrapped = {k: {"value": v, "desc": None} for k, v in config.items()}
    node = {"name": "r1", "id": "UnVuOjE=", "createdAt": "2024-01-02T03:04:05.123456Z",
            "config": V.dumps(wrapped), "summaryMetrics": V.dumps(summary), "tags": tags,
            "historyKeys": {"lastStep": 2**63 + 5, "nan": float("nan")}}
    with session_scope(engine) as s:
        project = upsert_project(s, "e", "values")
        upsert_runs(s, project, [node])
    with session_scope(engine) as s:
        run = s.scalar(select(Run).where(Run.run_id == "r1"))
        back = run_node(run, None)
        assert back["config"] == node["config"]  # the raw text, byte for byte
        assert same(V.loads(back["config"]), wrapped)
        assert same(V.loads(back["summaryMetrics"]), summary)
        assert same(back["tags"], tags)
        assert same(back["historyKeys"], node["historyKeys"])
        rows = s.execute(select(RunValue).where(RunValue.run_pk == run.pk,
                                                RunValue.root == V.SUMMARY,
                                                RunValue.elem == 0)).scalars().all()
        by_path = {r.path: r for r in rows}
        for key, value in summary.items():
            r = by_path[key]
            kind, num, nan, txt = V.scalar_fields(value)
            assert (r.kind, bool(r.nan), r.txt) == (kind, nan, txt)
            if isinstance(num, float) and math.isinf(num):
                assert r.num == num
            elif num is not None:
                assert r.num == num and type(r.num) is type(num)
            else:
                assert r.num is None


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 2**63, 2**64 + 1,
                                   -(2**63), True, False, 0, 1, 1.0, None, "ünï", [1, [2]],
                                   {"_type": "histogram", "values": [1], "bins": [0.0, 1.0]}])
def test_codec_round_trip(value):
    assert same(V.loads(V.dumps(value)), value)


def test_bool_is_not_a_number_in_index():
    assert V.scalar_fields(True)[0] == V.BOOL
    assert V.scalar_fields(1)[0] == V.NUMBER
    assert V.canonical_json([1.0, True]) == "[1,true]"


def test_large_int_keeps_exact_digits():
    kind, num, nan, txt = V.scalar_fields(2**64 + 1)
    assert kind == V.NUMBER and txt == str(2**64 + 1) and isinstance(num, float)
    kind, num, nan, txt = V.scalar_fields(2**63 - 1)
    assert num == 2**63 - 1 and txt is None


def test_int64_extremes_stored_exactly(engine):
    with session_scope(engine) as s:
        project = upsert_project(s, "e", "ints")
        upsert_runs(s, project, [{"name": "big", "summaryMetrics": json.dumps(
            {"a": 2**63 - 1, "b": 2**62 + 1, "c": -(2**63)})}])
    with session_scope(engine) as s:
        got = dict(s.execute(select(RunValue.path, RunValue.num).join(Run).where(
            Run.run_id == "big", RunValue.root == V.SUMMARY)).all())
    assert got == {"a": 2**63 - 1, "b": 2**62 + 1, "c": -(2**63)}


@pytest.mark.parametrize("text,expected", [
    ("2024-01-02T03:04:05", 1704164645.0),
    ("2024-01-02T03:04:05Z", 1704164645.0),
    ("2024-01-02T04:04:05+01:00", 1704164645.0),
    ("2024-01-02T03:04:05.500000Z", 1704164645.5),
    ("not a date", None),
])
def test_parse_timestamp(text, expected):
    assert V.parse_timestamp(text) == expected


def test_config_unwrapping_only_top_level():
    cfg = {"a": {"value": {"value": 1}}, "b": 3, "_wandb": {"value": {"t": 1}}}
    assert V.unwrap_config(cfg) == {"a": {"value": 1}, "b": 3, "_wandb": {"t": 1}}


def test_dotted_key_and_nested_share_a_path():
    paths = [p for p, e, _ in V.flatten({"opt.lr": 1, "opt": {"lr": 2}})]
    assert paths.count("opt.lr") == 2


def test_int_beyond_any_double_is_indexed_and_kept_exact(engine):  # noqa: D103
    huge = 10**400
    kind, num, nan, txt = V.scalar_fields(huge)
    assert kind == V.NUMBER and num == float("inf") and txt == str(huge)
    assert V.scalar_fields(-huge)[1] == float("-inf")
    with session_scope(engine) as s:
        project = upsert_project(s, "e", "huge")
        upsert_runs(s, project, [{"name": "h", "summaryMetrics": V.dumps({"x": huge})}])
    with session_scope(engine) as s:
        run = s.scalar(select(Run).where(Run.run_id == "h"))
        assert V.loads(run.summary_raw)["x"] == huge
