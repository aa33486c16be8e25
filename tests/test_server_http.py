"""The HTTP side of ``serve``: auth, file endpoints, fault injection, stats, the subprocess
entry point."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from sqlalchemy.orm import Session

from wandb_mirror.errors import ConfigError
from wandb_mirror.server import Faults, make_server
from wandb_mirror.store import artifacts as A
from wandb_mirror.store import files as F
from wandb_mirror.store.engine import session_scope
from wandb_mirror.store.runs import get_project, get_run

KEY = "a" * 20 + "-" + "b" * 20
TIMEOUT = 30
VIEWER = {"query": "query Viewer { viewer { id entity } }", "variables": {}, "operationName": "Viewer"}


def gql(url, auth=("api", KEY), body=VIEWER, **kw):
    return requests.post(f"{url}/graphql", json=body, auth=auth, timeout=TIMEOUT, **kw)


# ----------------------------------------------------------------------------- auth


def test_loopback_accepts_any_well_formed_key_only(served_synth):
    assert gql(served_synth.url).status_code == 200
    assert gql(served_synth.url, auth=("api", "short")).status_code == 401
    assert gql(served_synth.url, auth=("user", KEY)).status_code == 401
    assert gql(served_synth.url, auth=None).status_code == 401
    assert gql(served_synth.url, auth=("api", "x" * 39 + "!")).status_code == 401


def test_configured_keys_are_required(synth_store, serve):
    engine, _ = synth_store
    server = serve(engine, api_keys=[KEY])
    assert gql(server.url).status_code == 200
    assert gql(server.url, auth=("api", "c" * 40)).status_code == 401


def test_non_loopback_bind_requires_keys(synth_store):
    engine, _ = synth_store
    with pytest.raises(ConfigError, match="API keys"):
        make_server(engine, host="0.0.0.0")
    with pytest.raises(ConfigError):
        make_server(engine, api_keys=["too-short"])


def test_keys_are_never_logged(synth_store, serve, caplog):
    engine, _ = synth_store
    server = serve(engine)
    with caplog.at_level(logging.DEBUG, logger="wandb_mirror.server"):
        gql(server.url)
        gql(server.url, auth=("api", "z" * 45))
        requests.get(f"{server.url}/nope", auth=("api", KEY), timeout=TIMEOUT)
    assert caplog.records  # requests are logged at DEBUG ...
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert KEY not in text and "z" * 45 not in text  # ... without their keys


# ----------------------------------------------------------------------------- files


FILES_Q = """query($name: String!) { project(name: "demo", entityName: "synth") {
  run(name: $name) { files { edges { node { name url directUrl md5 sizeBytes } } } } } }"""


def _file_urls(server, run_id):
    body = gql(server.url, body={"query": FILES_Q, "variables": {"name": run_id}}).json()
    return {e["node"]["name"]: e["node"] for e in body["data"]["project"]["run"]["files"]["edges"]}


def test_run_file_urls_are_absolute_signed_and_serve_the_cached_bytes(served_synth, synth_store):
    engine, result = synth_store
    files = _file_urls(served_synth, result.run_ids[1])
    with Session(engine) as session:
        for name, node in files.items():
            assert node["url"].startswith(served_synth.url + "/files/synth/demo/")
            reply = requests.get(node["url"], timeout=TIMEOUT)  # signed: no auth needed
            assert reply.status_code == 200
            assert reply.content == F.get_content(session, node["md5"])
            assert len(reply.content) == node["sizeBytes"]
        url = next(iter(files.values()))["url"]
        bare = url.split("?")[0]
        assert requests.get(bare, timeout=TIMEOUT).status_code == 401
        assert requests.get(bare, auth=("api", KEY), timeout=TIMEOUT).status_code == 200
        assert requests.get(bare + "?sig=forged", timeout=TIMEOUT).status_code == 401


def test_never_mirrored_content_is_a_clear_404(tmp_path, serve):
    from wandb_mirror import synth
    from wandb_mirror.store import open_store

    engine = open_store(tmp_path / "s.db")
    result = synth.generate(engine, runs=2, history_steps=3, system_events=0, sweeps=0,
                            artifact_collections=0, reports=0)
    with session_scope(engine) as session:
        run = get_run(session, get_project(session, "synth", "demo").pk, result.run_ids[0])
        F.upsert_files(session, run, [{"name": "big.bin", "md5": F.md5_b64(b"never fetched"),
                                       "sizeBytes": 13, "id": "RmlsZTpiaWc="}])
    server = serve(engine)
    node = _file_urls(server, result.run_ids[0])["big.bin"]
    reply = requests.get(node["url"], timeout=TIMEOUT)
    assert reply.status_code == 404
    assert "never mirrored" in reply.json()["errors"][0]["message"]
    missing = node["url"].replace("big.bin", "nope.bin")
    assert requests.get(missing.split("?")[0], auth=("api", KEY), timeout=TIMEOUT).status_code == 404


def test_manifest_and_artifact_file_endpoints(served_synth, synth_store):
    engine, _ = synth_store
    q = """query($id: ID!) { artifact(id: $id) { currentManifest { file { directUrl } }
             files { edges { node { name directUrl md5 } } } } }"""
    with Session(engine) as session:
        version = A.get_version(session, get_project(session, "synth", "demo").pk, "resnet:v1")
        body = gql(served_synth.url, body={"query": q, "variables": {"id": version.upstream_id}}).json()
        art = body["data"]["artifact"]
        manifest = requests.get(art["currentManifest"]["file"]["directUrl"], timeout=TIMEOUT)
        assert manifest.status_code == 200 and manifest.text == version.manifest_raw
        for edge in art["files"]["edges"]:
            got = requests.get(edge["node"]["directUrl"], timeout=TIMEOUT)
            assert got.content == F.get_content(session, edge["node"]["md5"])
        names = [e["node"]["name"] for e in art["files"]["edges"]]
        assert "refs/remote.bin" not in names  # references are not served files


# ----------------------------------------------------------------------------- faults, stats


def test_scripted_faults_then_ok(synth_store, serve):
    engine, _ = synth_store
    server = serve(engine, faults=Faults(script=["429", "503", "500"], retry_after=2.5))
    first = gql(server.url)
    assert first.status_code == 429 and first.headers["Retry-After"] == "2.5"
    assert gql(server.url).status_code == 503
    assert gql(server.url).status_code == 500
    assert gql(server.url).status_code == 200
    snap = server.stats.snapshot()
    assert snap["faults"] == {"429": 1, "503": 1, "500": 1}
    assert snap["operations"] == {"Viewer": 4}  # faulted requests are counted too
    assert snap["statuses"] == {"429": 1, "503": 1, "500": 1, "200": 1}


def test_dropped_connection(synth_store, serve):
    engine, _ = synth_store
    server = serve(engine, faults={"script": ["drop"]})
    with pytest.raises(requests.ConnectionError):
        gql(server.url)
    assert gql(server.url).status_code == 200


def test_probabilities_latency_and_operation_targeting(synth_store, serve):
    engine, _ = synth_store
    server = serve(engine, faults=Faults(p_5xx=1.0, operations=["Other"], latency=0.2))
    start = time.monotonic()
    assert gql(server.url).status_code == 200  # Viewer is not targeted ...
    assert time.monotonic() - start < 5
    server.faults = Faults(p_429=1.0, latency=0.2, seed=1)
    start = time.monotonic()
    assert gql(server.url).status_code == 429  # ... now everything is
    assert time.monotonic() - start >= 0.2
    with pytest.raises(ValueError):
        Faults(p_429=1.5)


def test_stats_and_fault_endpoints_only_in_test_mode(synth_store, serve):
    engine, _ = synth_store
    prod = serve(engine)
    assert requests.get(f"{prod.url}/_mirror/stats", timeout=TIMEOUT).status_code == 404
    test = serve(engine, test_mode=True)
    gql(test.url)
    stats = requests.get(f"{test.url}/_mirror/stats", timeout=TIMEOUT).json()
    assert stats["operations"] == {"Viewer": 1}
    reply = requests.post(f"{test.url}/_mirror/faults", json={"script": ["502"]}, timeout=TIMEOUT)
    assert reply.status_code == 200
    assert gql(test.url).status_code == 502
    requests.post(f"{test.url}/_mirror/faults", json=None, timeout=TIMEOUT)
    requests.post(f"{test.url}/_mirror/stats/reset", timeout=TIMEOUT)
    assert requests.get(f"{test.url}/_mirror/stats", timeout=TIMEOUT).json()["requests"] == 0


# ----------------------------------------------------------------------------- subprocess


def test_module_entry_point_prints_url_and_stops_on_sigterm(synth_store):
    engine, _ = synth_store
    db = engine.url.database
    proc = subprocess.Popen([sys.executable, "-m", "wandb_mirror.server", "--db", db, "--port", "0",
                             "--test-mode"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.poll() else url
        assert gql(url).json()["data"]["viewer"]["entity"] == "synth"
        assert requests.get(f"{url}/_mirror/stats", timeout=TIMEOUT).json()["requests"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
    assert proc.returncode == 0


def test_parquet_export_option(synth_store, serve):
    import io

    import pyarrow.parquet as pq

    from wandb_mirror.server import ServeOptions
    from wandb_mirror.store import history as H

    engine, result = synth_store
    server = serve(engine, options=ServeOptions(export_parquet=True))
    q = """query($n: String!) { project(name: "demo", entityName: "synth") { run(name: $n) {
             state parquetHistory(liveKeys: ["_step"]) { parquetUrls liveData } } } }"""
    with Session(engine) as session:
        project = get_project(session, "synth", "demo")
        for run_id in result.run_ids[:10]:
            run = get_run(session, project.pk, run_id)
            got = gql(server.url, body={"query": q, "variables": {"n": run_id}}).json()
            ph = got["data"]["project"]["run"]["parquetHistory"]
            if run.state == "running":
                assert ph == {"parquetUrls": [], "liveData": []}
                continue
            (url,) = ph["parquetUrls"]
            table = pq.read_table(io.BytesIO(requests.get(url, timeout=TIMEOUT).content))
            assert table.column("_step").to_pylist() == [r["_step"] for r in H.read_rows(session, run.pk)]


def test_reply_cache_serves_identical_requests_and_keeps_faults_first(synth_store, serve):
    engine, _ = synth_store
    server = serve(engine, test_mode=True)
    body = {"query": 'query { project(name: "demo", entityName: "synth") { runCount } }',
            "variables": {}, "operationName": ""}
    first = gql(server.url, body=body)
    second = gql(server.url, body=body)
    assert first.content == second.content and len(server.replies._entries) >= 1
    server.faults = Faults(script=["503"])
    assert gql(server.url, body=body).status_code == 503  # faults apply before the cache
    assert gql(server.url, body=body).status_code == 200
    assert server.stats.snapshot()["operations"] == {"<anonymous>": 4}
    errors = {"query": "{ viewer { nope } }", "variables": {}}
    gql(server.url, body=errors)
    assert all("nope" not in k[0] for k in server.replies._entries)  # errors are not cached
