"""``wandb-mirror serve --workers N``: forked workers on one port, supervised.

Real subprocesses (the CLI), real sockets on 127.0.0.1, real signals; Linux ``/proc`` to find
the workers. Every process a test starts is ended by its PID, also when the test fails.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from wandb_mirror import synth
from wandb_mirror.store import open_store
from wandb_mirror.store.snapshot import snapshot_store

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir() or not hasattr(os, "fork"),
                                reason="needs fork and Linux /proc to find the workers")

KEY = "k" * 40
RUNS_QUERY = """query R($cursor: String) { project(name: "demo", entityName: "synth") {
  runs(first: 7, after: $cursor, order: "+created_at") {
    edges { node { name notes } cursor } pageInfo { hasNextPage } } } }"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("workers") / "w.db"
    engine = open_store(path)
    synth.generate(engine, entity="synth", project="demo", runs=20, history_steps=5, seed=3)
    engine.dispose()
    return path


def _children(pid: int) -> set[int]:
    try:
        return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Served:
    def __init__(self, db: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "wandb_mirror", "serve", "--db", str(db), "--port", "0",
             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        self.pid = self.proc.pid

    def workers(self) -> set[int]:
        return _children(self.pid)

    def post(self, query: str, variables: dict | None = None) -> requests.Response:
        # a new connection per call: each may land on another worker
        resp = requests.post(self.url + "/graphql", auth=("api", KEY), timeout=30,
                             json={"query": query, "variables": variables or {}},
                             headers={"Connection": "close"})
        assert resp.status_code == 200, resp.text
        return resp

    def runs(self) -> tuple[list[tuple[str, str | None]], str]:
        """Every run (name, notes) by paging, and the worker that served the last page."""
        out, cursor = [], None
        while True:
            resp = self.post(RUNS_QUERY, {"cursor": cursor})
            conn = resp.json()["data"]["project"]["runs"]
            out += [(e["node"]["name"], e["node"]["notes"]) for e in conn["edges"]]
            if not conn["pageInfo"]["hasNextPage"]:
                return out, resp.headers["X-Wandb-Mirror-Worker"]
            cursor = conn["edges"][-1]["cursor"]

    def stop(self) -> None:
        pids = self.workers()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        for pid in pids:  # never leave a worker behind, even when a test failed
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def served(store: Path) -> Iterator[Served]:
    started: list[Served] = []

    def start(db: Path = store, *args: str) -> Served:
        s = Served(db, *args)
        started.append(s)
        assert s.url.startswith("http://127.0.0.1:"), s.proc.stderr.read()
        return s

    yield start  # type: ignore[misc]
    for s in started:
        s.stop()


def _expected(db: Path) -> list[tuple[str, str | None]]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT run_id, notes FROM runs ORDER BY created_at, pk").fetchall()


def _every_worker(server: Served, count: int) -> dict[str, list]:
    """Walk the runs over fresh connections until each of ``count`` workers served a walk
    (bounded); returns each worker's last answer."""
    answers: dict[str, list] = {}
    for _ in range(40 * count):
        runs, worker = server.runs()
        answers[worker] = runs
        if len(answers) == count:
            break
    return answers


def test_workers_share_the_port_and_answer_alike(served, store):
    server = served(store, "--workers", "2")
    _wait_for(lambda: len(server.workers()) == 2, what="two workers")
    answers = _every_worker(server, 2)
    assert set(answers) == {"0", "1"}, "the kernel never handed a connection to one worker"
    expected = _expected(store)
    assert len(expected) == 20
    assert answers["0"] == answers["1"] == expected


def test_a_killed_worker_is_replaced(served, store):
    server = served(store, "--workers", "2")
    _wait_for(lambda: len(server.workers()) == 2, what="two workers")
    before = server.workers()
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    _wait_for(lambda: len(server.workers()) == 2 and victim not in server.workers(),
              what="a replacement worker")
    assert server.proc.poll() is None
    answers = _every_worker(server, 2)
    assert set(answers) == {"0", "1"}
    assert all(runs == _expected(store) for runs in answers.values())


def test_sigterm_stops_every_worker(served, store):
    server = served(store, "--workers", "2")
    _wait_for(lambda: len(server.workers()) == 2, what="two workers")
    workers = server.workers()
    server.post("{ viewer { id } }")
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(15) == 0
    _wait_for(lambda: not any(_alive(pid) for pid in workers), what="the workers to exit")


def test_workers_exit_when_the_supervisor_is_killed(served, store):
    server = served(store, "--workers", "2")
    _wait_for(lambda: len(server.workers()) == 2, what="two workers")
    workers = server.workers()
    server.proc.kill()  # SIGKILL: the supervisor cannot stop them itself
    server.proc.wait(15)
    # reparented workers notice within a poll interval; nothing keeps serving the port
    _wait_for(lambda: not any(_alive(pid) for pid in workers), what="orphaned workers to exit")
    with pytest.raises(requests.ConnectionError):
        requests.post(server.url + "/graphql", auth=("api", KEY), timeout=5,
                      json={"query": "{ viewer { id } }"})


def test_a_write_through_one_worker_is_read_by_every_worker(served, store, tmp_path):
    db = snapshot_store(store, tmp_path / "writable.db")
    server = served(db, "--workers", "2", "--writable")
    _wait_for(lambda: len(server.workers()) == 2, what="two workers")
    before = _every_worker(server, 2)  # both workers have now cached the listing and its runs
    assert set(before) == {"0", "1"}
    import sqlite3

    with sqlite3.connect(db) as conn:
        storage_id, run_id = conn.execute(
            "SELECT storage_id, run_id FROM runs ORDER BY created_at, pk LIMIT 1").fetchone()
    resp = server.post('mutation U($id: String!) { upsertBucket(input: {id: $id, notes: '
                       '"written by one worker"}) { bucket { name notes } } }', {"id": storage_id})
    assert resp.json()["data"]["upsertBucket"]["bucket"] == {"name": run_id,
                                                             "notes": "written by one worker"}
    after = _every_worker(server, 2)
    assert set(after) == {"0", "1"}
    for runs in after.values():
        assert runs[0] == (run_id, "written by one worker")
        assert runs[1:] == before["0"][1:]


def test_bad_worker_counts_are_refused(store):
    for args, message in ((["--workers", "-1"], "workers must be a whole number"),):
        out = subprocess.run([sys.executable, "-m", "wandb_mirror", "serve", "--db", str(store),
                              "--port", "0", *args], capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and message in out.stderr, out.stderr
    # test mode counts requests per process: one worker only
    out = subprocess.run([sys.executable, "-m", "wandb_mirror.server", "--db", str(store),
                          "--port", "0", "--test-mode", "--workers", "2"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "one worker" in out.stderr, out.stderr


def test_workers_from_the_config_file(served, store, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[serve]\nworkers = 3\n")
    proc = subprocess.Popen([sys.executable, "-m", "wandb_mirror", "--config", str(cfg), "serve",
                             "--db", str(store), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("http://127.0.0.1:")
        _wait_for(lambda: len(_children(proc.pid)) == 3, what="three workers")
    finally:
        workers = _children(proc.pid)
        proc.terminate()
        proc.wait(15)
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.stdout.close()
        proc.stderr.close()
