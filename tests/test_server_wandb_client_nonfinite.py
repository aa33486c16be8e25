"""NaN and ±Infinity in history, read by the real ``wandb`` 0.31 client from ``serve``, and
round-tripped mirror -> serve -> sync.

What the client accepts (found with this test; evidence in ``store.values.nonfinite_as_strings``):

- history rows sent as JSON *strings* (``history``: ``run.history()``, ``run.scan_history()``)
  may hold the ``NaN``/``Infinity``/``-Infinity`` tokens: Python's ``json`` and wandb-core's
  ``simplejsonext`` both parse them, and the client returns floats ``nan``/``inf``/``-inf``;
- ``sampledHistory`` rows (``run.history(keys=...)``, ``run.scan_history(keys=...)``) are JSON
  *values* of the reply, which wandb-core decodes with Go's ``encoding/json``: one ``NaN`` token
  fails the call (``invalid character 'N' looking for beginning of value``). W&B sends the
  strings ``"NaN"``/``"Infinity"``/``"-Infinity"`` there, and the client returns those strings.
"""
from __future__ import annotations

import json
import math

import pytest
from sqlalchemy import select

from wandb_mirror import synth
from wandb_mirror.config import load_settings
from wandb_mirror.remote import connect
from wandb_mirror.server import make_server
from wandb_mirror.store import history as H
from wandb_mirror.store import open_store, session_scope
from wandb_mirror.store.models import Run
from wandb_mirror.store.runs import get_project, get_run, upsert_runs
from wandb_mirror.store.values import canonical_json, dumps, loads, nonfinite_as_strings
from wandb_mirror.sync import run_sync

from .api_world import time_limit, wandb_env

TEST_TIMEOUT_S = 180
ENTITY, PROJECT, RUN = "synth", "nonfinite", "nanrun01"
KEY = "k" * 40
NAN, INF = math.nan, math.inf
LOSSES = [1.0, NAN, INF, -INF, 2.5]
ROWS = [{"_step": i, "loss": v, "acc": 0.5} for i, v in enumerate(LOSSES)]
ROWS[1]["note"] = "NaN"  # a logged *string* must stay a string
ROWS[4]["nested"] = {"a": [1.0, NAN], "b": -INF}


@pytest.fixture(autouse=True)
def _bounded():
    with time_limit(TEST_TIMEOUT_S):
        yield


def _make_store(path):
    engine = open_store(path)
    synth.generate(engine, entity=ENTITY, project=PROJECT, runs=1, history_steps=3, seed=5,
                   artifact_collections=0, sweeps=0, reports=0, files_per_run=0)
    with session_scope(engine) as s:
        p = get_project(s, ENTITY, PROJECT)
        (run,) = upsert_runs(s, p, [{
            "name": RUN, "id": "UnVuOm5hbnJ1bjAx", "projectId": "1", "state": "finished",
            "displayName": "diverged", "createdAt": "2031-01-01T00:00:00Z",
            "heartbeatAt": "2031-01-01T00:10:00Z", "config": json.dumps({}),
            "summaryMetrics": dumps({"loss": NAN, "best": INF}), "user": {"username": "u"},
            "historyKeys": {"lastStep": len(ROWS) - 1}, "historyLineCount": len(ROWS)}])
        H.append_rows(s, run.pk, ROWS)
    return engine


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    engine = _make_store(tmp_path_factory.mktemp("nonfinite") / "a.db")
    server = make_server(engine, test_mode=True).start()
    try:
        yield engine, server
    finally:
        server.stop()
        engine.dispose()


@pytest.fixture(scope="module")
def wandb_api(tmp_path_factory, upstream):
    """The real client on ``serve``; every WANDB_* directory in tmp; wandb-core torn down."""
    wandb = pytest.importorskip("wandb")
    with wandb_env(tmp_path_factory.mktemp("wandb_home")):
        try:
            yield wandb.Api(api_key="x" * 40, overrides={"base_url": upstream[1].url}, timeout=30)
        finally:
            from wandb.sdk import wandb_setup

            wandb_setup.teardown()  # stops the wandb-core process


def _same(got, want) -> bool:
    """Equal, with NaN equal to NaN, key order ignored and 1 == 1.0 (wandb-core hands an
    integral float back as an int)."""
    return canonical_json(got) == canonical_json(want)


def _serve_sends_strings_in_sampled_history(server) -> bool:
    """Whether serve already spells non-finite ``sampledHistory`` values as W&B does."""
    data = connect(server.url, KEY, max_retries=0).execute(
        "query S($e: String!, $p: String!, $r: String!, $s: [JSONString!]!) {"
        " project(name: $p, entityName: $e) { run(name: $r) { sampledHistory(specs: $s) } } }",
        {"e": ENTITY, "p": PROJECT, "r": RUN, "s": [json.dumps({"keys": ["_step", "loss"]})]})
    loss = data["project"]["run"]["sampledHistory"][0][1]["loss"]
    return loss == "NaN"


# ----------------------------------------------------------------------------- the encoder


def test_nonfinite_as_strings_spells_them_as_wandb_and_leaves_the_rest_alone():
    row = {"_step": 3, "a": NAN, "b": INF, "c": -INF, "d": 1.5, "e": "NaN", "f": None,
           "g": {"h": [NAN, 2, True]}, "i": [1.0, {"j": -INF}]}
    assert nonfinite_as_strings(row) == {
        "_step": 3, "a": "NaN", "b": "Infinity", "c": "-Infinity", "d": 1.5, "e": "NaN",
        "f": None, "g": {"h": ["NaN", 2, True]}, "i": [1.0, {"j": "-Infinity"}]}
    assert math.isnan(row["a"])  # the input is not modified
    finite = [{"_step": 1, "x": 0.5, "y": [1, 2], "z": {"w": "s"}}]
    assert nonfinite_as_strings(finite) is finite  # nothing to change: nothing copied
    assert json.loads(json.dumps(nonfinite_as_strings(row), allow_nan=False))  # standard JSON


# ----------------------------------------------------------------------------- the real client


def test_history_rows_sent_as_strings_come_back_as_floats(wandb_api):
    run = wandb_api.run(f"{ENTITY}/{PROJECT}/{RUN}")
    got = run.history(pandas=False)
    assert _same([r["loss"] for r in got], LOSSES)  # nan, inf, -inf as floats
    assert got[1]["note"] == "NaN" and _same(got[4]["nested"], ROWS[4]["nested"])
    scanned = list(run.scan_history(page_size=2))
    assert _same([r["loss"] for r in scanned], LOSSES)
    assert scanned[1]["note"] == "NaN" and _same(scanned[4]["nested"], ROWS[4]["nested"])
    frame = run.history()  # pandas: a float column
    assert str(frame["loss"].dtype) == "float64" and math.isnan(frame["loss"][1])


def test_keyed_history_gets_the_wandb_strings(wandb_api, upstream):
    assert _serve_sends_strings_in_sampled_history(upstream[1])
    run = wandb_api.run(f"{ENTITY}/{PROJECT}/{RUN}")
    want = [1.0, "NaN", "Infinity", "-Infinity", 2.5]
    got = run.history(keys=["loss"], pandas=False)
    assert [r["loss"] for r in got] == want and [r["_step"] for r in got] == list(range(5))
    scanned = list(run.scan_history(keys=["loss"], page_size=2))
    assert [r["loss"] for r in scanned] == want
    assert [r["acc"] for r in run.scan_history(keys=["acc"])] == [0.5] * 5


# ----------------------------------------------------------------------------- our own sync


def test_nonfinite_history_round_trips_mirror_serve_sync(upstream, tmp_path):
    """serve over A -> sync into B -> serve over B -> sync into C: the same floats (and the
    string ``"NaN"`` still a string) at every hop."""
    _, server = upstream
    started, engines = [], []
    try:
        source = server
        for name in ("b.db", "c.db"):
            settings = load_settings(env={}, db=str(tmp_path / name), base_url=source.url,
                                     api_key=KEY)
            assert run_sync(settings, [f"{ENTITY}/{PROJECT}"]).skipped == []
            engine = open_store(tmp_path / name)
            engines.append(engine)
            with session_scope(engine) as s:
                run = get_run(s, get_project(s, ENTITY, PROJECT).pk, RUN)
                got = H.read_rows(s, run.pk)
                summary = loads(s.scalar(select(Run.summary_raw).where(Run.pk == run.pk)))
            assert _same(got, ROWS), name
            assert got[1]["note"] == "NaN" and math.isnan(summary["loss"])
            assert summary["best"] == INF
            source = make_server(engine).start()
            started.append(source)
    finally:
        for srv in started:
            srv.stop()
        for engine in engines:
            engine.dispose()
