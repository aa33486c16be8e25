"""The sync worker against a real `wandb-mirror serve` on 127.0.0.1 over a synth store."""
from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from sqlalchemy import select, update

from wandb_mirror import synth
from wandb_mirror.config import load_settings
from wandb_mirror.errors import NotMirroredError, SyncError
from wandb_mirror.remote import connect
from wandb_mirror.server import make_server
from wandb_mirror.store import history as H
from wandb_mirror.store import open_store, session_scope
from wandb_mirror.store.models import Run
from wandb_mirror.store.runs import get_project, upsert_runs
from wandb_mirror.sync import SyncLease, run_sync

from .store_snapshot import same_project

KEY = "k" * 40
PATH = "synth/demo"


def make_upstream(path, **kw):
    engine = open_store(path)
    synth.generate(engine, **{"runs": 12, "history_steps": 120, "seed": 3, **kw})
    return engine


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    engine = make_upstream(tmp_path_factory.mktemp("up") / "a.db")
    server = make_server(engine, test_mode=True).start()
    try:
        yield engine, server
    finally:
        server.stop()
        engine.dispose()


def sync(db, server, *, client=None, **kw):
    settings = load_settings(env={}, db=str(db), base_url=server.url, api_key=KEY,
                             history_page_size=50, page_size=5)
    return run_sync(settings, [PATH], client=client or connect(server.url, KEY), **kw)


def test_mirror_of_a_mirror_is_identical(upstream, tmp_path):
    a, server = upstream
    result = sync(tmp_path / "b.db", server)
    assert result.skipped == []
    b = open_store(tmp_path / "b.db")
    same_project(a, b, "synth", "demo")
    assert result.reports[0].runs_changed == 12


def test_unchanged_resync_makes_a_handful_of_requests(upstream, tmp_path):
    a, server = upstream
    sync(tmp_path / "b.db", server)
    again = sync(tmp_path / "b.db", server)
    # project, runs page, sweeps, reports, artifact types, one collections page per type,
    # plus the details of still-running runs (whose state may change any moment)
    with session_scope(open_store(tmp_path / "b.db")) as s:
        running = s.query(Run).filter(Run.state == "running").count()
    assert again.requests <= 7 + 4 * running, again.summary()
    assert again.reports[0].history_rows == 0
    same_project(a, open_store(tmp_path / "b.db"), "synth", "demo")


def _mutate(engine):
    """Upstream changes: new steps on a run, a new run, a running run finishes."""
    with session_scope(engine) as s:
        p = get_project(s, "synth", "demo")
        runs = list(s.scalars(select(Run).where(Run.project_pk == p.pk).order_by(Run.created_ts)))
        grow = runs[0]
        last = H.last_step(s, grow.pk)
        H.append_rows(s, grow.pk, [{"_step": last + i, "loss": 1.0 / i, "_runtime": float(i)}
                                   for i in range(1, 31)])
        hk = json.loads(grow.history_keys_raw)
        hk["lastStep"] = last + 30
        upsert_runs(s, p, [{"name": grow.run_id, "historyKeys": hk,
                            "historyLineCount": (grow.history_line_count or 0) + 30,
                            "heartbeatAt": "2031-01-01T00:00:00Z"}])
        running = next(r for r in runs if r.state == "running")
        upsert_runs(s, p, [{"name": running.run_id, "state": "finished",
                            "heartbeatAt": "2031-01-02T00:00:00Z"}])
        upsert_runs(s, p, [{"name": "newrun01", "id": "UnVuOm5ldw==", "displayName": "new",
                            "state": "finished", "tags": ["late"],
                            "createdAt": "2031-02-01T00:00:00Z",
                            "config": json.dumps({"lr": {"value": 0.5}}),
                            "summaryMetrics": json.dumps({"loss": 0.1}),
                            "historyKeys": {"lastStep": -1}, "historyLineCount": 0,
                            "user": {"username": "synth-user0"}}])
        return grow.run_id, running.run_id


def test_incremental_resync_reflects_exactly_the_changes(tmp_path):
    a = make_upstream(tmp_path / "a.db")
    with make_server(a, test_mode=True) as server:
        sync(tmp_path / "b.db", server)
        grown, finished = _mutate(a)
        server.stats.reset()
        result = sync(tmp_path / "b.db", server)
        report = result.reports[0]
        assert report.history_rows == 30
        b = open_store(tmp_path / "b.db")
        same_project(a, b, "synth", "demo")
        with session_scope(b) as s:
            states = dict(s.execute(select(Run.run_id, Run.state)).all())
        assert states[finished] == "finished" and "newrun01" in states
        # the three changed runs' details come in one batched request, no per-run paging
        ops = server.stats.snapshot()["operations"]
        assert ops.get("MirrorRunDetails", 0) + ops.get("MirrorHistory", 0) <= 2, ops
        assert result.requests <= 10, result.summary()


def test_full_sync_marks_deleted_runs_and_hides_them(tmp_path):
    a = make_upstream(tmp_path / "a.db", runs=5)
    with make_server(a) as server:
        sync(tmp_path / "b.db", server)
        with session_scope(a) as s:
            victim = s.scalars(select(Run.run_id)).first()
            s.execute(Run.__table__.delete().where(Run.run_id == victim))
        assert sync(tmp_path / "b.db", server).reports[0].runs_deleted == 0  # incremental
        assert sync(tmp_path / "b.db", server, full=True).reports[0].runs_deleted == 1
        b = open_store(tmp_path / "b.db")
        with session_scope(b) as s:
            row = s.scalar(select(Run).where(Run.run_id == victim))
            assert row is not None and row.deleted_at is not None  # marked, not destroyed
        same_project(a, b, "synth", "demo")


def test_sync_survives_20_percent_faults(upstream, tmp_path):
    a, server = upstream
    server.faults = __import__("wandb_mirror.server", fromlist=["Faults"]).Faults(
        p_429=0.07, retry_after=0.01, p_5xx=0.07, p_drop=0.06, seed=11)
    try:
        client = connect(server.url, KEY, max_retries=12, backoff_min=0.01, backoff_max=0.05)
        result = sync(tmp_path / "b.db", server, client=client)
    finally:
        server.faults = None
    assert result.retries > 0 and result.skipped == []
    same_project(a, open_store(tmp_path / "b.db"), "synth", "demo")


def test_second_sync_is_refused_while_first_holds_the_lease(upstream, tmp_path):
    a, server = upstream
    db = tmp_path / "b.db"
    open_store(db).dispose()
    with SyncLease(db):
        with pytest.raises(SyncError, match="another sync .*pid %d" % os.getpid()):
            sync(db, server)
        start = time.monotonic()
        with pytest.raises(SyncError):
            sync(db, server, wait=0.5)
        assert time.monotonic() - start >= 0.5
    assert sync(db, server).skipped == []


def test_unknown_project_is_a_clear_error(upstream, tmp_path):
    _, server = upstream
    settings = load_settings(env={}, db=str(tmp_path / "b.db"), base_url=server.url, api_key=KEY)
    with pytest.raises(NotMirroredError, match="synth/nope does not exist"):
        run_sync(settings, ["synth/nope"])


def test_malformed_run_is_skipped_named_and_the_rest_synced(tmp_path):
    a = make_upstream(tmp_path / "a.db", runs=4)
    with session_scope(a) as s:
        bad = s.scalars(select(Run.run_id).order_by(Run.run_id)).first()
        s.execute(update(Run).where(Run.run_id == bad).values(config_raw="{not json"))
    with make_server(a) as server:
        result = sync(tmp_path / "b.db", server)
    assert len(result.skipped) == 1 and bad in result.skipped[0] and "config" in result.skipped[0]
    with session_scope(open_store(tmp_path / "b.db")) as s:
        ids = set(s.scalars(select(Run.run_id)))
    assert bad not in ids and len(ids) == 3


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "wandb_mirror", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_kill_9_at_random_moments_then_resync_is_identical(upstream, tmp_path):
    a, server = upstream
    db = tmp_path / "b.db"
    rng = random.Random(7)
    args = ["sync", PATH, "--db", str(db), "--base-url", server.url, "--api-key", KEY,
            "--no-progress"]
    env = {**os.environ, "WANDB_MIRROR_HISTORY_PAGE_SIZE": "20", "WANDB_MIRROR_PAGE_SIZE": "3"}
    killed = 0
    for _trial in range(4):
        proc = _cli(*args, env=env)
        try:
            time.sleep(rng.uniform(0.8, 3.0))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                killed += 1
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        con = sqlite3.connect(db)
        assert con.execute("pragma integrity_check").fetchone() == ("ok",)
        con.close()
    assert killed >= 1, "every sync finished before the kill; the test proved nothing"
    final = _cli(*args, env=env)
    out, err = final.communicate(timeout=180)
    assert final.returncode == 0, err
    same_project(a, open_store(db), "synth", "demo")


def test_cli_sync_happy_and_bad_paths(upstream, tmp_path):
    _, server = upstream
    db = tmp_path / "b.db"
    ok = _cli("sync", PATH, "--db", str(db), "--base-url", server.url, "--api-key", KEY)
    out, err = ok.communicate(timeout=180)
    assert ok.returncode == 0, err
    assert "synth/demo: 12 runs listed" in out and "requests" in out
    bad = _cli("sync", "not-a-path", "--db", str(db), "--base-url", server.url, "--api-key", KEY)
    out, err = bad.communicate(timeout=60)
    assert bad.returncode == 1 and "ENTITY/PROJECT" in err and "Traceback" not in err
    down = _cli("sync", PATH, "--db", str(db), "--base-url", "http://127.0.0.1:9",
                "--api-key", KEY, env={**os.environ, "WANDB_MIRROR_MAX_RETRIES": "0"})
    out, err = down.communicate(timeout=60)
    assert down.returncode == 1 and "127.0.0.1:9" in err and "Traceback" not in err


def _numeric_rows(rows):
    """Rows with ints and integral floats made alike (a parquet column has one numeric type)."""
    def norm(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return v
        return float(v)
    return [{k: norm(v) for k, v in r.items()} for r in rows]


def test_parquet_exports_are_ingested_and_only_the_tail_paged(tmp_path):
    from wandb_mirror.server import ServeOptions
    from wandb_mirror.store.values import dumps

    a = make_upstream(tmp_path / "a.db", runs=4, history_steps=200)
    with make_server(a, options=ServeOptions(export_parquet=True), test_mode=True) as server:
        result = sync(tmp_path / "b.db", server)
        stats = server.stats.snapshot()
    assert result.skipped == []
    assert stats["paths"].get("parquet", 0) >= 1, stats
    b = open_store(tmp_path / "b.db")
    with session_scope(a) as sa, session_scope(b) as sb:
        for run in sa.scalars(select(Run)):
            rb = sb.scalar(select(Run).where(Run.run_id == run.run_id))
            want = _numeric_rows(H.read_rows(sa, run.pk))
            got = _numeric_rows(H.read_rows(sb, rb.pk))
            assert dumps(got) == dumps(want), run.run_id
    # finished runs came from parquet, so far fewer history pages than steps/page_size
    assert stats["operations"].get("MirrorHistory", 0) < 4 * 200 / 50


def test_interrupted_between_a_long_history_and_its_batch_loses_nothing(tmp_path):
    """A stop (or crash) after a run's long history was paged but before its events, files
    and artifact links were fetched must leave the run unfinished, so the next sync fetches
    them (a bug the kill -9 test once caught)."""
    import threading

    from wandb_mirror.errors import SyncInterrupted
    from wandb_mirror.sync.progress import Progress

    a = make_upstream(tmp_path / "a.db", runs=1, history_steps=120)
    stop = threading.Event()

    class StopAfterHistory(Progress):
        rows = 0

        def advance(self, key, amount=1, total=None):
            if key.endswith(":history"):
                self.rows += amount
                if self.rows >= 120:
                    stop.set()

    with make_server(a) as server:
        settings = load_settings(env={}, db=str(tmp_path / "b.db"), base_url=server.url,
                                 api_key=KEY, history_page_size=20)
        with pytest.raises(SyncInterrupted):
            run_sync(settings, [PATH], progress=StopAfterHistory(), stop=stop)
        b = open_store(tmp_path / "b.db")
        with session_scope(b) as s:
            run = s.scalar(select(Run))
            assert H.row_count(s, run.pk) == 120 and H.row_count(s, run.pk, "events") == 0
        assert run_sync(settings, [PATH]).skipped == []
    same_project(a, b, "synth", "demo")


def test_sweeps_and_reports_deleted_upstream_are_marked_and_hidden(tmp_path):
    from wandb_mirror.store.models import Report, Sweep

    a = make_upstream(tmp_path / "a.db", runs=3)
    with make_server(a) as server:
        sync(tmp_path / "b.db", server)
        with session_scope(a) as s:
            sweep = s.scalars(select(Sweep.name)).first()
            report = s.scalars(select(Report.upstream_id)).first()
            s.execute(update(Sweep).where(Sweep.name == sweep).values(deleted_at="2030-01-01"))
            s.execute(Report.__table__.delete().where(Report.upstream_id == report))
        sync(tmp_path / "b.db", server)
    b = open_store(tmp_path / "b.db")
    same_project(a, b, "synth", "demo")
    with session_scope(b) as s:
        assert s.scalar(select(Sweep.deleted_at).where(Sweep.name == sweep)) is not None
        assert s.scalar(select(Report.deleted_at).where(Report.upstream_id == report)) is not None


def test_a_refused_batched_request_falls_back_to_one_run_at_a_time(upstream, tmp_path):
    """A server that rejects the aliased details document (here: HTTP 400 for it) still gets
    a complete sync, run by run."""
    a, server = upstream
    server.faults = __import__("wandb_mirror.server", fromlist=["Faults"]).Faults(
        operations=["MirrorRunDetails"], paths=("/graphql",), p_5xx=1.0, codes_5xx=(400,))
    try:
        result = sync(tmp_path / "b.db", server)
        ops = server.stats.snapshot()["operations"]
    finally:
        server.faults = None
    assert result.skipped == []
    assert ops.get("MirrorHistory", 0) > 0 and ops.get("MirrorFiles", 0) > 0
    same_project(a, open_store(tmp_path / "b.db"), "synth", "demo")
