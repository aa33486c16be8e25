"""Proof: the real ``wandb`` 0.31 client's write calls work against ``serve --writable``.

``run.update()`` (an ``UpsertBucket`` asking for the whole ``RunFragment``, then the summary's
own ``UpsertBucket``), ``run.summary.update()``, ``run.upload_file()`` (``createRunFiles``, then
wandb-core's ``PUT`` to the upload URL), ``file.delete()`` and ``run.delete()`` change the served
store, and the client reads the change back. The client's Go sidecar (wandb-core) is torn down at the end; every
test is bounded by an alarm so a hang fails instead of blocking the suite.
"""
from __future__ import annotations


import pytest

from wandb_mirror.server import ServeOptions, make_server
from wandb_mirror.store import open_store
from wandb_mirror.store.engine import session_scope
from wandb_mirror.store.runs import get_project, get_run
from wandb_mirror.store.snapshot import snapshot_store
from wandb_mirror.store.values import loads

from .api_world import API_KEY, time_limit, wandb_env

TEST_TIMEOUT_S = 180
ENTITY, PROJECT = "synth", "demo"


@pytest.fixture(autouse=True)
def _bounded():
    with time_limit(TEST_TIMEOUT_S):
        yield


@pytest.fixture(scope="module")
def writable(synth_store, tmp_path_factory):
    """A snapshot of the shared synth store (the writes change it), served writable."""
    dst = tmp_path_factory.mktemp("wandb_writes") / "store.db"
    engine = open_store(snapshot_store(synth_store[0].url.database, dst))
    server = make_server(engine, options=ServeOptions(writable=True)).start()
    try:
        yield engine, server, synth_store[1]
    finally:
        server.stop()
        engine.dispose()


@pytest.fixture(scope="module")
def client(writable, tmp_path_factory):
    wandb = pytest.importorskip("wandb")
    with wandb_env(tmp_path_factory.mktemp("wandb_home")):
        api = wandb.Api(api_key=API_KEY, overrides={"base_url": writable[1].url}, timeout=30)
        try:
            yield api
        finally:
            from wandb.sdk import wandb_setup

            wandb_setup.teardown()  # stops the wandb-core process


def stored(engine, run_id):
    with session_scope(engine) as s:
        return get_run(s, get_project(s, ENTITY, PROJECT).pk, run_id)


def test_real_client_run_update(client, writable):
    engine, _server, result = writable
    run_id = result.run_ids[0]
    run = client.run(f"{ENTITY}/{PROJECT}/{run_id}")
    run.tags = ["from-wandb", *run.tags]
    run.notes = "written by wandb.Api"
    run.config["lr"] = 0.123
    run.update()
    row = stored(engine, run_id)
    assert loads(row.tags_raw)[0] == "from-wandb"
    assert row.notes == "written by wandb.Api"
    assert loads(row.config_raw)["lr"]["value"] == 0.123
    again = client.run(f"{ENTITY}/{PROJECT}/{run_id}")
    again.load(force=True)
    assert again.tags[0] == "from-wandb" and again.config["lr"] == 0.123


def test_real_client_summary_update(client, writable):
    engine, _server, result = writable
    run = client.run(f"{ENTITY}/{PROJECT}/{result.run_ids[1]}")
    run.summary.update({"mirror_written": 7})
    assert loads(stored(engine, run.id).summary_raw)["mirror_written"] == 7


def test_real_client_upload_file(client, writable, tmp_path):
    engine, _server, result = writable
    run = client.run(f"{ENTITY}/{PROJECT}/{result.run_ids[2]}")
    (tmp_path / "hello.txt").write_bytes(b"hello from wandb.Api\n")
    made = run.upload_file(str(tmp_path / "hello.txt"), root=str(tmp_path))
    assert made.name == "hello.txt"
    with session_scope(engine) as s:
        from wandb_mirror.store import files as F

        row = F.get_file(s, stored(engine, run.id).pk, "hello.txt")
        assert F.get_content(s, row.md5) == b"hello from wandb.Api\n"
    with run.file("hello.txt").download(root=str(tmp_path / "dl")) as fh:
        assert fh.read() == "hello from wandb.Api\n"


def test_real_client_file_and_run_delete(client, writable):
    engine, _server, result = writable
    run = client.run(f"{ENTITY}/{PROJECT}/{result.run_ids[3]}")
    name = run.files()[0].name
    run.file(name).delete()
    assert name not in [f.name for f in client.run("/".join(run.path)).files()]
    run.delete()
    assert stored(engine, run.id).deleted_at is not None
