"""The daemon against a served synth store, as a real subprocess; snapshots while syncing."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time


from wandb_mirror import synth
from wandb_mirror.export import runs_frame
from wandb_mirror.server import make_server
from wandb_mirror.store import open_store, session_scope
from wandb_mirror.store.runs import get_project, upsert_runs
from wandb_mirror.store.snapshot import snapshot_store

from .store_snapshot import same_project

KEY = "d" * 40


def _env(url, **extra):
    return {**os.environ, "WANDB_BASE_URL": url, "WANDB_API_KEY": KEY,
            "WANDB_MIRROR_PROJECTS": "synth/demo", **extra}


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _run_ids(db):
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return {r[0] for r in con.execute("select run_id from runs")}
    except sqlite3.Error:
        return set()


def _stop(proc, sig=signal.SIGTERM, timeout=60):
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_daemon_picks_up_upstream_changes_within_the_interval(tmp_path):
    upstream = open_store(tmp_path / "a.db")
    synth.generate(upstream, runs=5, history_steps=40, seed=9)
    with make_server(upstream) as server:
        db = tmp_path / "b.db"
        proc = subprocess.Popen([sys.executable, "-m", "wandb_mirror", "daemon", "--db", str(db)],
                                env=_env(server.url, WANDB_MIRROR_INTERVAL="2"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait(lambda: len(_run_ids(db)) == 5, 90, "the first sync")
            with session_scope(upstream) as s:
                upsert_runs(s, get_project(s, "synth", "demo"), [{
                    "name": "added001", "id": "UnVuOmFkZGVk", "state": "finished",
                    "createdAt": "2030-01-01T00:00:00Z", "config": json.dumps({}),
                    "summaryMetrics": json.dumps({"loss": 1.0}), "tags": [],
                    "historyKeys": {"keys": {}, "lastStep": -1}, "historyLineCount": 0}])
            seen = time.monotonic()
            _wait(lambda: "added001" in _run_ids(db), 60, "the new run to land")
            assert time.monotonic() - seen < 30
        finally:
            code = _stop(proc)
        out, err = proc.communicate()
        assert code == 0, err
    same_project(upstream, open_store(db), "synth", "demo")


def test_sigterm_mid_sync_leaves_a_consistent_store_the_next_run_completes(tmp_path):
    upstream = open_store(tmp_path / "a.db")
    synth.generate(upstream, runs=6, history_steps=3000, seed=4)
    with make_server(upstream, faults={"latency": 0.05}) as server:
        db = tmp_path / "b.db"
        env = _env(server.url, WANDB_MIRROR_INTERVAL="600", WANDB_MIRROR_HISTORY_PAGE_SIZE="100")
        proc = subprocess.Popen([sys.executable, "-m", "wandb_mirror", "daemon", "--db", str(db)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait(lambda: len(_run_ids(db)) > 0, 90, "the sync to start writing")
            time.sleep(1.0)
        finally:
            code = _stop(proc, timeout=60)
        assert code == 0, proc.communicate()[1]
        with sqlite3.connect(db) as con:
            assert con.execute("pragma integrity_check").fetchone() == ("ok",)
            rows = con.execute("select coalesce(sum(n_rows), 0) from history_chunks "
                               "where stream = 'default'").fetchone()[0]
        assert rows < 6 * 3000, "the sync finished before SIGTERM; the test proved nothing"
        server.faults = None
        done = subprocess.run([sys.executable, "-m", "wandb_mirror", "sync", "synth/demo",
                               "--db", str(db)], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
    same_project(upstream, open_store(db), "synth", "demo")


def test_snapshot_while_a_sync_writes(tmp_path):
    upstream = open_store(tmp_path / "a.db")
    synth.generate(upstream, runs=10, history_steps=2000, seed=8)
    with make_server(upstream, faults={"latency": 0.02}) as server:
        db = tmp_path / "b.db"
        env = _env(server.url, WANDB_MIRROR_HISTORY_PAGE_SIZE="200")
        proc = subprocess.Popen([sys.executable, "-m", "wandb_mirror", "sync", "synth/demo",
                                 "--db", str(db)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        snaps = []
        try:
            _wait(lambda: len(_run_ids(db)) > 0, 90, "the sync to start writing")
            for i in range(3):
                snaps.append(snapshot_store(db, tmp_path / f"snap{i}.db"))
                time.sleep(0.3)
            writing = proc.poll() is None
        finally:
            _stop(proc, signal.SIGKILL)
    assert writing, "the sync ended before the snapshots; the test proved nothing"
    for snap in snaps:
        with sqlite3.connect(snap) as con:
            assert con.execute("pragma integrity_check").fetchone() == ("ok",)
        frame = runs_frame(open_store(snap), "synth/demo", filters={"state": {"$ne": "x"}})
        assert len(frame) > 0
