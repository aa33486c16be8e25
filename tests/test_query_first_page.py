"""``first_run_pks`` (a first page read along the value index) against the full ordered list.

Whatever path it takes (the walk along the value index, its bounded windows, the fallback to
the full statement), the first ``limit`` pks must be exactly the head of
``run_pks_statement``'s list: same runs, same order, for every mix of types, NaN, nulls,
missing values, duplicate value rows of one key, ties and other projects' rows.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from wandb_mirror.errors import FilterError
from wandb_mirror.query import first_run_pks, run_pks_statement
from wandb_mirror.query import runs as query_runs

from .query_fixtures import new_store, seed

NAN, INF = float("nan"), float("inf")

SCALARS = st.one_of(
    st.sampled_from([0, 1, -1, 2, 0.5, 1.0, NAN, INF, -INF, 2**63, 2**63 + 1, -(2**63) - 5,
                     2**64, True, False, None, "", "a", "b", "B", [1], [1, 2], ["a"], {"k": 1},
                     {"k": "v"}]),
    st.integers(-3, 3),
)
MISSING = object()
VALUES = st.one_of(st.just(MISSING), SCALARS)
STAMPS = st.sampled_from([None, "2023-01-01T00:00:00Z", "2023-01-01T00:00:00Z",
                          "2023-01-02T00:00:00Z", "2022-12-31T23:00:00+00:00"])


@st.composite
def run_docs(draw: st.DrawFn) -> dict:
    config, summary = {}, {}
    for target, key in ((summary, "m"), (config, "x")):
        v = draw(VALUES)
        if v is not MISSING:
            target[key] = v
    # A dotted key and a nested one both index under the path "a.b": two first-row candidates.
    dotted, nested = draw(VALUES), draw(VALUES)
    if dotted is not MISSING:
        config["a.b"] = dotted
    if nested is not MISSING:
        config["a"] = {"b": nested}
    doc = {"config": config, "summary": summary,
           "state": draw(st.sampled_from(["finished", "running", "crashed"])),
           "tags": draw(st.lists(st.sampled_from(["p", "q", "r"]), max_size=2))}
    stamp = draw(STAMPS)
    if stamp is not None:
        doc["createdAt"] = stamp
    return doc


FILTERS = [None, {"state": "finished"}, {"config.x": {"$gt": 0}},
           {"summary_metrics.m": {"$exists": True}}, {"$or": [{"config.x": None},
                                                             {"state": "running"}]},
           {"summary_metrics.m": {"$ne": NAN}}]
ORDERS = ["-summary_metrics.m", "+summary_metrics.m", "summary_metrics.m", "-config.x",
          "+config.x", "-config.a.b", "+config.a.b", "+tags", "-tags", "+created_at",
          ["-summary_metrics.m", "+config.x"], "config.x.value"]


def _check(docs: list[dict], other: list[dict], filters_list: list = FILTERS,
           orders: list = ORDERS) -> None:
    engine = new_store()
    try:
        with Session(engine) as s:
            seed(s, other, project="other")
            proj = seed(s, docs)
            s.commit()
            pk = proj.pk
        with engine.connect() as conn:
            for filters in filters_list:
                for order in orders:
                    full = list(conn.execute(run_pks_statement(pk, filters, order)).scalars())
                    for limit in sorted({0, 1, 3, len(full) - 1, len(full) + 2}):
                        if limit < 0:
                            continue
                        for text_sql in (True, False):  # SQLite text, SQLAlchemy statements
                            with sqlite_text(text_sql):
                                head = first_run_pks(conn, pk, filters, order, limit=limit)
                            assert head == full[:limit], (filters, order, limit, text_sql)
    finally:
        engine.dispose()


@contextmanager
def sqlite_text(on: bool) -> Iterator[None]:
    saved = query_runs.SQLITE_TEXT
    query_runs.SQLITE_TEXT = on
    try:
        yield
    finally:
        query_runs.SQLITE_TEXT = saved


@contextmanager
def windows_of(windows: tuple[int, int, int, int]) -> Iterator[None]:
    """Run with other window sizes, so small stores take the bounded and fallback paths."""
    names = ("_FIRST_WINDOW", "_WINDOW_PER_RUN", "_WINDOW_GROWTH", "_WINDOW_TRIES")
    saved = [getattr(query_runs, n) for n in names]
    for n, v in zip(names, windows):
        setattr(query_runs, n, v)
    try:
        yield
    finally:
        for n, v in zip(names, saved):
            setattr(query_runs, n, v)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(run_docs(), max_size=14), other=st.lists(run_docs(), max_size=4),
       windows=st.sampled_from([(64, 4, 8, 2), (1, 0, 2, 2), (0, 1, 2, 1), (2, 0, 1, 3)]),
       filters=st.sampled_from(FILTERS), orders=st.lists(st.sampled_from(ORDERS), min_size=1,
                                                         max_size=3, unique_by=repr))
def test_first_page_is_the_head_of_the_full_order(docs, other, windows, filters,
                                                  orders) -> None:
    with windows_of(windows):
        _check(docs, other, [filters], orders)


def test_ties_duplicates_and_nan_by_hand() -> None:
    docs = [{"summary": {"m": 1}, "createdAt": "2023-01-02T00:00:00Z"},
            {"summary": {"m": 1}, "createdAt": "2023-01-01T00:00:00Z"},
            {"summary": {"m": NAN}},
            {"summary": {"m": "s"}},
            {"config": {"a.b": 5, "a": {"b": "z"}}, "summary": {"m": 2}},
            {"summary": {"m": None}},
            {"summary": {"m": 2**63 + 1}}, {"summary": {"m": 2**63 + 2}},
            {}]
    for windows, other in (((1, 0, 2, 2), [{"summary": {"m": 7}}]), ((0, 1, 2, 1), []),
                           ((64, 4, 8, 2), [{"summary": {"m": 0}}])):
        with windows_of(windows):
            _check(docs, other)


def test_first_page_checks_its_arguments() -> None:
    engine = new_store()
    with engine.connect() as conn:
        with pytest.raises(FilterError):
            first_run_pks(conn, 1, None, "-summary_metrics.m", limit=-1)
        with pytest.raises(FilterError):
            first_run_pks(conn, 1, {"$bad": 1}, "-summary_metrics.m", limit=5)
        with pytest.raises(FilterError):
            first_run_pks(conn, 1, None, "+nosuchkey", limit=5)
        assert first_run_pks(conn, 1, None, "-summary_metrics.m", limit=5) == []
    engine.dispose()


def test_statements_do_not_configure_the_orm() -> None:
    # Compiling the run filters/orders from table columns keeps a process's first listing
    # from paying for configuring every ORM mapper (measured 30-50 ms).
    import subprocess
    import sys

    code = ("from wandb_mirror.store import open_store, models\n"
            "from wandb_mirror.query import first_run_pks, run_pks_statement\n"
            "e = open_store('sqlite://')\n"
            "with e.connect() as c:\n"
            "    first_run_pks(c, 1, {'config.lr': {'$lt': 1}, 'state': 'x'}, "
            "'-summary_metrics.loss', limit=3)\n"
            "    list(c.execute(run_pks_statement(1, {'tags': 'a'}, '+created_at')))\n"
            "print(models.Base.registry._new_mappers)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "True"
