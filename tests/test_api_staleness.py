"""The staleness contract, proven by counting requests at a real ``serve`` on 127.0.0.1.

Upstream is a small synth store served over HTTP; the mirror is a separate, initially empty
store filled by the Api's own incremental refreshes. The clock is injected.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

import wandb_mirror
from wandb_mirror import synth
from wandb_mirror.api import StaleDataWarning, WriteUnsupportedError
from wandb_mirror.errors import OfflineError
from wandb_mirror.store import open_store
from wandb_mirror.store.engine import session_scope
from wandb_mirror.store.runs import get_project, upsert_runs

from .api_world import Clock, mirror_settings

ENTITY, PROJECT = "up", "stream"
PATH = f"{ENTITY}/{PROJECT}"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    engine = open_store(tmp_path_factory.mktemp("upstream") / "up.db")
    result = synth.generate(engine, entity=ENTITY, project=PROJECT, runs=5, history_steps=30,
                            history_keys=4, system_events=3, sweeps=1, files_per_run=2,
                            artifact_collections=1, artifact_versions=2, reports=1)
    yield engine, result
    engine.dispose()


@pytest.fixture
def server(upstream, serve):
    return serve(upstream[0])


def make_api(tmp_path: Path, url: str, clock: Clock, **kw: Any) -> Any:
    kw.setdefault("max_age", 60.0)
    return wandb_mirror.Api(settings=mirror_settings(tmp_path / "mirror.db", url), clock=clock,
                            **kw)


def read_everything(api: Any, result: Any) -> None:
    runs = api.runs(PATH, {"state": {"$ne": "nope"}})
    assert len(runs) == len(result.run_ids)
    run = api.run(f"{PATH}/{result.run_ids[0]}")
    run.history(keys=["loss"])
    list(run.scan_history())
    [f.name for f in run.files()]
    api.sweep(f"{PATH}/{result.sweep_names[0]}").best_run()
    list(api.reports(PATH))
    assert api.artifact(f"{PATH}/{result.artifact_names[0]}").manifest.entries


def test_zero_requests_within_max_age(tmp_path, server, upstream):
    clock = Clock()
    api = make_api(tmp_path, server.url, clock)
    read_everything(api, upstream[1])
    first = server.stats.requests
    assert first > 0  # the project was never mirrored: the first read synced it
    for _ in range(3):
        clock.advance(20)  # 60 s in total: still within max_age
        read_everything(api, upstream[1])
    assert server.stats.requests == first


def test_refresh_after_expiry_is_incremental(tmp_path, server, upstream):
    engine, result = upstream
    clock = Clock()
    api = make_api(tmp_path, server.url, clock)
    assert len(api.runs(PATH)) == len(result.run_ids)
    before = server.stats.requests
    with session_scope(engine) as s:
        upsert_runs(s, get_project(s, ENTITY, PROJECT), [{
            "name": "newrun01", "id": "UnVuOm5ldw==", "displayName": "late-run",
            "state": "running", "createdAt": "2030-01-01T00:00:00", "config": "{}",
            "summaryMetrics": '{"loss": 0.1}', "tags": []}])
    try:
        assert len(api.runs(PATH)) == len(result.run_ids)  # within max_age: not seen yet
        assert server.stats.requests == before
        clock.advance(61)
        ids = [r.id for r in api.runs(PATH)]
        assert "newrun01" in ids
        assert server.stats.requests > before
        # incremental: the refresh did not re-read the history of finished runs
        ops = server.stats.snapshot()["operations"]
        assert sum(v for k, v in ops.items() if "istory" in k) < 2 * len(result.run_ids) + 2
    finally:
        from sqlalchemy import delete

        from wandb_mirror.store.models import Run

        with session_scope(engine) as s:
            s.execute(delete(Run).where(Run.run_id == "newrun01"))


def test_flush_refreshes_what_was_read(tmp_path, server, upstream):
    clock = Clock()
    api = make_api(tmp_path, server.url, clock)
    api.run(f"{PATH}/{upstream[1].run_ids[0]}")
    before = server.stats.requests
    api.run(f"{PATH}/{upstream[1].run_ids[1]}")
    assert server.stats.requests == before
    api.flush()
    api.run(f"{PATH}/{upstream[1].run_ids[1]}")
    assert server.stats.requests > before
    after = server.stats.requests
    api.runs(PATH)[0]
    assert server.stats.requests == after  # fresh again


def test_max_age_none_never_refreshes_by_itself(tmp_path, server, upstream):
    clock = Clock()
    api = make_api(tmp_path, server.url, clock, max_age=None)
    api.runs(PATH)[0]
    before = server.stats.requests
    clock.advance(10 ** 7)
    api.runs(PATH)[0]
    assert server.stats.requests == before


def test_offline_never_touches_the_network(tmp_path, server, upstream):
    clock = Clock()
    make_api(tmp_path, server.url, clock).runs(PATH)[0]  # mirror it once
    before = server.stats.requests
    offline = make_api(tmp_path, server.url, clock, offline=True, max_age=None)
    read_everything(offline, upstream[1])
    clock.advance(10 ** 6)
    offline.flush()
    read_everything(offline, upstream[1])
    assert server.stats.requests == before


def test_offline_never_mirrored_names_the_sync_command(tmp_path, server):
    api = make_api(tmp_path, server.url, Clock(), offline=True)
    with pytest.raises(OfflineError, match=f"wandb-mirror sync {PATH}"):
        api.runs(PATH)[0]
    with pytest.raises(OfflineError, match="wandb-mirror sync"):
        api.run(f"{PATH}/abc")
    assert server.stats.requests == 0


def test_offline_old_data_warns_once(tmp_path, server, upstream):
    clock = Clock()
    make_api(tmp_path, server.url, clock).runs(PATH)[0]
    clock.advance(3600)
    offline = make_api(tmp_path, server.url, clock, offline=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_everything(offline, upstream[1])
    stale = [w for w in caught if issubclass(w.category, StaleDataWarning)]
    assert len(stale) == 1 and "old" in str(stale[0].message)


def test_unreachable_server_answers_from_store_with_one_warning(tmp_path, upstream, serve):
    server = serve(upstream[0])
    clock = Clock()
    api = make_api(tmp_path, server.url, clock)
    ids = [r.id for r in api.runs(PATH)]
    server.stop()
    # stop() leaves already-accepted keep-alive connections being served: drop ours so the
    # next request really finds nothing listening.
    api._client().transport.session.close()
    clock.advance(3 * 3600)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert [r.id for r in api.runs(PATH)] == ids
        read_everything(api, upstream[1])
    stale = [w for w in caught if issubclass(w.category, StaleDataWarning)]
    assert len(stale) == 1, [str(w.message) for w in caught]
    assert "3 hours old" in str(stale[0].message)


def test_unreachable_and_never_mirrored(tmp_path, upstream, serve):
    server = serve(upstream[0])
    url = server.url
    server.stop()
    api = make_api(tmp_path, url, Clock())
    with pytest.raises(OfflineError, match=f"wandb-mirror sync {PATH}"):
        api.runs(PATH)[0]


def test_writes_offline_and_against_a_read_only_server(tmp_path, server, upstream):
    clock = Clock()
    online = make_api(tmp_path, server.url, clock)
    run = online.run(f"{PATH}/{upstream[1].run_ids[0]}")
    with pytest.raises(WriteUnsupportedError):
        run.update()
    with pytest.raises(WriteUnsupportedError):
        run.summary.update({"extra": 1})
    offline = make_api(tmp_path, server.url, clock, offline=True, max_age=None)
    orun = offline.run(f"{PATH}/{upstream[1].run_ids[0]}")
    before = server.stats.requests
    with pytest.raises(OfflineError, match="needs a connection"):
        orun.update()
    with pytest.raises(OfflineError, match="needs a connection"):
        offline.artifact(f"{PATH}/{upstream[1].artifact_names[0]}").delete()
    assert server.stats.requests == before


def test_online_downloads_fetch_then_work_offline(tmp_path, server, upstream):
    from wandb_mirror.store import files as store_files

    engine, result = upstream
    clock = Clock()
    api = make_api(tmp_path, server.url, clock)
    run = api.run(f"{PATH}/{result.run_ids[0]}")
    f = run.file("config.yaml")
    with session_scope(api.engine) as s:
        assert not store_files.has_content(s, f.md5)  # the sync does not cache bytes by default
    with session_scope(engine) as s:
        expected = store_files.get_content(s, f.md5)
    before = server.stats.requests
    with f.download(root=str(tmp_path / "online")) as fh:
        assert fh.read().encode() == expected
    assert server.stats.requests == before + 1  # one file GET, no GraphQL
    art = api.artifact(f"{PATH}/{result.artifact_names[0]}")
    art.download(root=str(tmp_path / "art_online"))
    art.verify(str(tmp_path / "art_online"))

    offline = make_api(tmp_path, server.url, clock, offline=True, max_age=None)
    before = server.stats.requests
    g = offline.run(f"{PATH}/{result.run_ids[0]}").file("config.yaml")
    with g.download(root=str(tmp_path / "offline")) as fh:
        assert fh.read().encode() == expected
    oart = offline.artifact(f"{PATH}/{result.artifact_names[0]}")
    oart.download(root=str(tmp_path / "art_offline"))
    oart.verify(str(tmp_path / "art_offline"))
    assert server.stats.requests == before


def test_writes_pass_through_as_wandb_mutations(tmp_path, upstream, server):
    """Against a server that implements the mutations, writes are sent as W&B sends them and
    the project is marked stale so the next read refreshes it."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            data = {"upsertBucket": {"bucket": {"id": "UnVuOjE="}}}
            out = json.dumps({"data": data}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: Any) -> None:
            pass

    clock = Clock()
    make_api(tmp_path, server.url, clock).runs(PATH)[0]  # mirror it from serve first
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        api = make_api(tmp_path, url, clock, max_age=None)
        run = api.run(f"{PATH}/{upstream[1].run_ids[0]}")
        assert seen == []  # reads stayed local
        run.tags = ["edited"]
        run.notes = "new notes"
        run.update()
        ops = [b["query"].split("(")[0].split()[-1] for b in seen]
        assert ops == ["UpsertBucket", "UpsertBucket"]  # run fields, then the summary
        first = seen[0]["variables"]
        assert first["id"] == run.storage_id and first["tags"] == ["edited"]
        assert first["notes"] == "new notes"
        assert json.loads(first["config"]) == json.loads(run.json_config)
        assert json.loads(seen[1]["variables"]["summaryMetrics"])["_step"] == \
            run.summary_metrics["_step"]
        assert (ENTITY, PROJECT) in api._freshness._stale
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_a_run_started_after_the_last_refresh_is_found_online(tmp_path, server, upstream):
    """Within max_age a run the store lacks triggers one incremental refresh (online), so a
    run started a moment ago is found; a run that does not exist still raises, and offline a
    miss never touches the network."""
    from sqlalchemy import delete

    from wandb_mirror.store.models import Run as RunRow

    engine, result = upstream
    clock = Clock()
    api = make_api(tmp_path, server.url, clock)
    assert len(api.runs(PATH)) == len(result.run_ids)
    with session_scope(engine) as s:
        upsert_runs(s, get_project(s, ENTITY, PROJECT), [{
            "name": "fresh001", "id": "UnVuOmZyZXNo", "state": "running",
            "createdAt": "2030-02-01T00:00:00", "config": "{}", "summaryMetrics": "{}",
            "tags": []}])
    try:
        before = server.stats.requests
        assert api.run(f"{PATH}/fresh001").id == "fresh001"  # no clock advance needed
        assert server.stats.requests > before
        with pytest.raises(ValueError, match="Could not find run"):
            api.run(f"{PATH}/nosuchrun")
        offline = make_api(tmp_path, server.url, clock, offline=True)
        quiet = server.stats.requests
        with pytest.raises(ValueError, match="Could not find run"):
            offline.run(f"{PATH}/nosuchrun2")
        assert server.stats.requests == quiet
    finally:
        with session_scope(engine) as s:
            s.execute(delete(RunRow).where(RunRow.run_id == "fresh001"))
