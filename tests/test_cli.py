"""Every command through a real subprocess: its happy path and its bad-input path."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

from wandb_mirror import synth
from wandb_mirror.server import make_server
from wandb_mirror.store import open_store

KEY = "c" * 40


def cli(*args, env=None, timeout=180):
    out = subprocess.run([sys.executable, "-m", "wandb_mirror", *args], capture_output=True,
                         text=True, timeout=timeout, env={**os.environ, **(env or {})})
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    upstream = open_store(root / "a.db")
    synth.generate(upstream, runs=8, history_steps=60, seed=5)
    server = make_server(upstream).start()
    try:
        db = root / "b.db"
        done = cli("sync", "synth/demo", "--db", str(db), "--base-url", server.url,
                   "--api-key", KEY)
        assert done.returncode == 0, done.stderr
        yield {"root": root, "db": db, "server": server, "upstream": upstream}
    finally:
        server.stop()


def one_line_error(out, code=1):
    assert out.returncode == code, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    return out.stderr


def test_status(world):
    out = cli("status", "--db", str(world["db"]), "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert rows[0]["project"] == "synth/demo" and rows[0]["runs"] == 8
    assert rows[0]["last error"] is None
    empty = cli("status", "--db", str(world["root"] / "empty.db"))
    assert empty.returncode == 0 and "no projects yet" in empty.stdout
    bad = cli("status", "--db", str(world["root"] / "nodir" / "x.db"))
    assert "does not exist" in one_line_error(bad)


def test_runs_filters_order_and_formats(world):
    out = cli("runs", "synth/demo", "--db", str(world["db"]), "--filters",
              '{"state": "finished"}', "--order", "-summary_metrics.loss", "--keys",
              "summary_metrics.loss", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert rows and all(r["state"] == "finished" for r in rows)
    losses = [r["summary_metrics.loss"] for r in rows if r["summary_metrics.loss"] is not None]
    finite = [x for x in losses if x == x]
    assert finite == sorted(finite, reverse=True)
    csv = cli("runs", "synth/demo", "--db", str(world["db"]), "--format", "csv", "--limit", "2")
    assert csv.returncode == 0 and len(csv.stdout.strip().splitlines()) == 3
    table = cli("runs", "synth/demo", "--db", str(world["db"]), "--limit", "2")
    assert table.returncode == 0 and "state" in table.stdout


@pytest.mark.parametrize("args,expect", [
    (["--filters", "{not json"], "must be JSON"),
    (["--filters", '{"state": {"$bogus": 1}}'], "$bogus"),
    (["--order", "+nosuch.key"], "nosuch"),
])
def test_runs_bad_input(world, args, expect):
    out = cli("runs", "synth/demo", "--db", str(world["db"]), *args)
    assert out.returncode != 0 and expect in out.stderr and "Traceback" not in out.stderr


def test_runs_unknown_project_names_the_sync_command(world):
    out = cli("runs", "synth/nope", "--db", str(world["db"]))
    assert "wandb-mirror sync synth/nope" in one_line_error(out)


def test_history(world):
    with sqlite3.connect(world["db"]) as con:
        run_id = con.execute("select run_id from runs order by run_id limit 1").fetchone()[0]
    out = cli("history", f"synth/demo/{run_id}", "--db", str(world["db"]), "--samples", "5",
              "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 5 and rows[0]["_step"] < rows[-1]["_step"]
    bad = cli("history", "synth/demo", "--db", str(world["db"]))
    assert "ENTITY/PROJECT/RUN_ID" in one_line_error(bad)


def test_export_parquet_and_csv(world, tmp_path):
    out = cli("export", "synth/demo", "--db", str(world["db"]), "--to", str(tmp_path / "p"))
    assert out.returncode == 0, out.stderr
    runs = pd.read_parquet(tmp_path / "p" / "runs.parquet")
    hist = pd.read_parquet(tmp_path / "p" / "history.parquet")
    assert len(runs) == 8 and set(hist["run_id"]) <= set(runs["id"]) and len(hist) > 0
    out = cli("export", "synth/demo", "--db", str(world["db"]), "--to", str(tmp_path / "c"),
              "--format", "csv", "--keys", "loss")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "c" / "history.csv").read_text().startswith("run_id,_step")
    bad = cli("export", "synth/demo", "--db", str(world["db"]), "--to", str(tmp_path / "x"),
              "--format", "xlsx")
    assert bad.returncode == 2 and "xlsx" in bad.stderr


def test_snapshot(world, tmp_path):
    dest = tmp_path / "snap.db"
    out = cli("snapshot", str(dest), "--db", str(world["db"]))
    assert out.returncode == 0, out.stderr and "integrity ok" in out.stdout
    with sqlite3.connect(dest) as con:
        assert con.execute("select count(*) from runs").fetchone() == (8,)
    again = cli("snapshot", str(dest), "--db", str(world["db"]))
    assert "already exists" in one_line_error(again)


def test_serve_subprocess_answers_graphql(world):
    import requests

    proc = subprocess.Popen([sys.executable, "-m", "wandb_mirror", "serve", "--db",
                             str(world["db"]), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        resp = requests.post(url + "/graphql", json={"query": "{ viewer { id } }"},
                             auth=("api", KEY), timeout=30)
        assert resp.status_code == 200 and resp.json()["data"]["viewer"]["id"]
    finally:
        proc.terminate()
        proc.wait(15)
    bad = cli("serve", "--db", str(world["db"]), "--host", "0.0.0.0", "--port", "0")
    assert "API keys" in one_line_error(bad)


@pytest.mark.parametrize("entry", [["wandb_mirror", "serve", "--writable"],
                                   ["wandb_mirror.server", "--writable"],
                                   ["wandb_mirror", "--config", "{cfg}", "serve"]])
def test_serve_writable_subprocess_applies_a_mutation(world, tmp_path, entry):
    import requests

    from wandb_mirror.store.snapshot import snapshot_store

    cfg = tmp_path / "c.toml"
    cfg.write_text("[serve]\nwritable = true\n")  # the third entry: serve.writable in config
    entry = [arg.format(cfg=cfg) for arg in entry]
    db = snapshot_store(world["db"], tmp_path / "w.db")  # the write must not touch the world
    with sqlite3.connect(db) as conn:
        storage_id, run_id = conn.execute("SELECT storage_id, run_id FROM runs LIMIT 1").fetchone()
    proc = subprocess.Popen([sys.executable, "-m", *entry, "--db", str(db), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        resp = requests.post(url + "/graphql", auth=("api", KEY), timeout=30, json={
            "query": "mutation U($id: String!) { upsertBucket(input: {id: $id, notes: \"cli\"})"
                     " { bucket { name notes } } }", "variables": {"id": storage_id}})
        assert resp.json()["data"]["upsertBucket"]["bucket"] == {"name": run_id, "notes": "cli"}
    finally:
        proc.terminate()
        proc.wait(15)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT notes FROM runs WHERE run_id = ?", (run_id,)).fetchone() \
            == ("cli",)


def test_config_check_and_bad_values(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sync]\ninterval = 60\nprojects = ["a/b"]\n[api]\nmax_age = "never"\n')
    out = cli("--config", str(cfg), "config", "check", env={"WANDB_API_KEY": "k" * 40})
    assert out.returncode == 0, out.stderr
    assert "interval = 60.0" in out.stdout and "projects = ('a/b',)" in out.stdout
    assert "max_age = None" in out.stdout and "api_key = '(set)'" in out.stdout
    assert "k" * 40 not in out.stdout
    cfg.write_text("[sync]\ninterval = \"soon\"\n")
    bad = cli("--config", str(cfg), "config", "check")
    err = one_line_error(bad)
    assert "sync.interval" in err and "a number" in err
    cfg.write_text("[sync]\nintervall = 3\n")
    assert "unknown key sync.intervall" in one_line_error(cli("--config", str(cfg), "config",
                                                               "check"))
    env_bad = cli("config", "check", env={"WANDB_MIRROR_PAGE_SIZE": "many"})
    assert "WANDB_MIRROR_PAGE_SIZE" in one_line_error(env_bad)


def test_config_with_key_readable_by_others_warns(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[upstream]\napi_key = "{"k" * 40}"\n')
    cfg.chmod(0o644)
    out = cli("--config", str(cfg), "config", "check")
    assert out.returncode == 0 and "chmod 600" in out.stderr


def test_every_command_has_help_with_an_example():
    for command in (["sync"], ["serve"], ["status"], ["runs"], ["history"], ["export"],
                    ["snapshot"], ["daemon"], ["db", "upgrade"], ["config", "check"], ["demo"]):
        out = cli(*command, "--help")
        assert out.returncode == 0, (command, out.stderr)
        assert "Example" in out.stdout, command


def test_default_store_location_is_created_on_first_use(tmp_path):
    out = cli("status", env={"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "data" / "wandb-mirror" / "store.db").exists()
