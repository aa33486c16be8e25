"""``Runs`` reads its first page on its own (``first_run_pks``) and the full ordered list only
when something needs it (``len()``, later pages, negative indexes): the paginator's answers
must be exactly those of the full list, and pages stay consistent when the store changes
between them."""
from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

import wandb_mirror
from wandb_mirror import synth
from wandb_mirror.store import open_store
from wandb_mirror.store.runs import get_project, upsert_runs

from .api_world import mirror_settings
from .query_fixtures import node

PATH = "synth/demo"
CASES = [
    ({"config.lr": {"$lt": 0.003}, "state": "finished"}, "-summary_metrics.loss"),
    ({}, "+summary_metrics.loss"),
    ({"state": {"$ne": "running"}}, "+created_at"),
    ({"summary_metrics.loss": {"$lt": 1e9}}, "-config.lr"),
    (None, ["-summary_metrics.loss", "+created_at"]),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("paging") / "paging.db"
    engine = open_store(path)
    synth.generate(engine, runs=160, history_steps=0, sweeps=0, files_per_run=0,
                   artifact_collections=0, reports=0, system_events=0, running_every=7)
    yield engine
    engine.dispose()


def new_api(engine):
    return wandb_mirror.Api(settings=mirror_settings(engine.url.database, "http://127.0.0.1:9"),
                            db=engine, offline=True, max_age=None)


def full_ids(api, filters, order) -> list[str]:
    """Every matching run id in order, from the full ordered list."""
    runs = api.runs(PATH, filters, order, per_page=1000)
    runs._ordered_pks()
    return [r.id for r in runs]


@pytest.mark.parametrize("filters,order", CASES)
@pytest.mark.parametrize("per_page", [1, 7, 50])
def test_pages_len_and_indexes_match_the_full_list(store, filters, order, per_page):
    expected = full_ids(new_api(store), filters, order)
    assert len(expected) > 0
    api = new_api(store)  # cold caches: the first page is read on its own

    runs = api.runs(PATH, filters, order, per_page=per_page)
    assert [r.id for r in runs[:per_page]] == expected[:per_page]
    assert runs._snapshot is None or len(expected) <= per_page  # the full list was not needed
    assert len(runs) == len(expected)
    assert [r.id for r in runs] == expected

    runs = api.runs(PATH, filters, order, per_page=per_page)
    assert runs[0].id == expected[0]
    assert runs[-1].id == expected[-1]
    assert [r.id for r in runs[2:9]] == expected[2:9]

    runs = api.runs(PATH, filters, order, per_page=per_page)
    assert len(runs) == len(expected)  # len() first, then pages
    assert [r.id for r in runs[:per_page + 3]] == expected[:per_page + 3]

    runs = api.runs(PATH, filters, order, per_page=per_page)
    assert runs[min(len(expected) - 1, per_page + 1)].id == \
        expected[min(len(expected) - 1, per_page + 1)]


def test_first_page_alone_then_the_rest_after_a_store_change(tmp_path):
    engine = open_store(tmp_path / "change.db")
    synth.generate(engine, runs=40, history_steps=0, sweeps=0, files_per_run=0,
                   artifact_collections=0, reports=0, system_events=0, running_every=0)
    order = "-summary_metrics.loss"
    api = new_api(engine)
    runs = api.runs(PATH, None, order, per_page=10)
    first = [r.id for r in runs[:10]]
    assert runs._snapshot is None and runs._head is not None

    # A new run sorting first, and a first-page run now sorting last, written between pages.
    with Session(engine) as s:
        proj = get_project(s, "synth", "demo")
        upsert_runs(s, proj, [node("newcomer", {"summary": {"loss": 1e12},
                                                "createdAt": "2030-01-01T00:00:00Z"}),
                              node(first[0], {"summary": {"loss": -1e12}})])
        s.commit()

    ids = [r.id for r in runs]
    assert ids[:10] == first  # the page already served stays first
    assert len(ids) == len(set(ids)) == 41  # nothing twice, nothing skipped
    assert "newcomer" in ids
    assert len(runs) == 41
    # A new Runs sees the new order.
    assert full_ids(new_api(engine), None, order)[0] == "newcomer"
    engine.dispose()


def test_a_first_page_holding_every_match_needs_no_second_query(store):
    api = new_api(store)
    runs = api.runs(PATH, {"config.lr": {"$lt": 0.003}, "state": "finished"},
                    "-summary_metrics.loss", per_page=1000)
    ids = [r.id for r in runs[:1000]]
    assert runs._snapshot is not None and runs._snapshot[1] == [r._pk for r in runs.objects]
    assert len(runs) == len(ids)


def test_warm_first_page_comes_from_the_cached_full_list(store):
    api = new_api(store)
    filters, order = {"state": "finished"}, "-summary_metrics.loss"
    expected = full_ids(api, filters, order)
    runs = api.runs(PATH, filters, order, per_page=5)
    assert [r.id for r in runs[:5]] == expected[:5]


def test_a_first_listing_does_not_configure_the_orm(store):
    # Configuring the ORM mappers costs a process 30-50 ms on its first ORM query; the listing
    # path (project lookup, first page, page rows, users) uses none, so a new notebook kernel's
    # first runs() page does not pay it.
    import subprocess
    import sys

    code = (
        "import sys, wandb_mirror\n"
        "from wandb_mirror.config import Settings\n"
        "from wandb_mirror.store import models\n"
        "db = sys.argv[1]\n"
        "api = wandb_mirror.Api(settings=Settings(db=db, base_url='http://127.0.0.1:9',"
        " api_key='x' * 40), offline=True, max_age=None)\n"
        "runs = api.runs('synth/demo', {'config.lr': {'$lt': 0.003}, 'state': 'finished'},"
        " '-summary_metrics.loss', per_page=5)\n"
        "ids = [r.id for r in runs[:5]]\n"
        "print(len(ids), models.Base.registry._new_mappers)\n")
    out = subprocess.run([sys.executable, "-c", code, store.url.database], capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "5 True"
