"""Write methods of ``wandb_mirror.Api`` against a real ``serve --writable`` on 127.0.0.1.

Upstream is a small synth store (a fresh copy per test: the writes change it) served in
writable mode; the Api mirrors it into its own store. Each write must be visible upstream (in
the served store, read directly), through the same Api right after, and to a second mirror
that synced before the write and refreshes incrementally afterwards. Offline writes and a
read-only server still refuse, with clear errors.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

import wandb_mirror
from wandb_mirror import synth
from wandb_mirror.api import WriteUnsupportedError
from wandb_mirror.errors import GraphQLError, OfflineError
from wandb_mirror.server import ServeOptions
from wandb_mirror.store import artifacts as A
from wandb_mirror.store import files as F
from wandb_mirror.store import open_store
from wandb_mirror.store.engine import session_scope
from wandb_mirror.store.models import RunArtifact
from wandb_mirror.store.runs import get_project, get_run
from wandb_mirror.store.values import loads, parse_timestamp

from .api_world import Clock, mirror_settings

ENTITY, PROJECT = "up", "writes"
PATH = f"{ENTITY}/{PROJECT}"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A synth store built once; each test serves its own copy."""
    path = tmp_path_factory.mktemp("writes_template") / "up.db"
    engine = open_store(path)
    result = synth.generate(engine, entity=ENTITY, project=PROJECT, runs=4, history_steps=10,
                            history_keys=2, system_events=2, sweeps=0, files_per_run=2,
                            artifact_collections=1, artifact_versions=2, reports=0)
    engine.dispose()
    return path, result


@pytest.fixture
def upstream(template, tmp_path):
    src, result = template
    dst = tmp_path / "upstream" / "up.db"
    dst.parent.mkdir()
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            shutil.copy(f"{src}{suffix}", f"{dst}{suffix}")
    engine = open_store(dst)
    yield engine, result
    engine.dispose()


@pytest.fixture
def server(upstream, serve):
    return serve(upstream[0], options=ServeOptions(writable=True), test_mode=True)


def make_api(tmp_path: Path, url: str, name: str = "mirror", **kw: Any) -> Any:
    kw.setdefault("max_age", 60.0)
    kw.setdefault("clock", Clock())
    return wandb_mirror.Api(settings=mirror_settings(tmp_path / f"{name}.db", url), **kw)


def upstream_run(engine, run_id: str):
    with session_scope(engine) as s:
        return get_run(s, get_project(s, ENTITY, PROJECT).pk, run_id)


# ----------------------------------------------------------------------------- runs


def test_run_update_reaches_upstream_this_api_and_other_mirrors(tmp_path, upstream, server):
    engine, result = upstream
    run_id = result.run_ids[0]
    clock = Clock()
    other = make_api(tmp_path, server.url, "other", clock=clock)  # synced before the write
    assert "edited" not in other.run(f"{PATH}/{run_id}").tags
    before = upstream_run(engine, run_id)

    api = make_api(tmp_path, server.url)
    run = api.run(f"{PATH}/{run_id}")
    run.tags = ["edited", "keep"]
    run.notes = "new notes"
    run.display_name = "renamed"
    run.config["lr"] = 0.5
    run.update()

    after = upstream_run(engine, run_id)
    assert loads(after.tags_raw) == ["edited", "keep"]
    assert (after.notes, after.display_name) == ("new notes", "renamed")
    assert loads(after.config_raw)["lr"] == {"value": 0.5, "desc": None}
    assert parse_timestamp(after.updated_at) > parse_timestamp(before.updated_at or "1970-01-01")
    assert parse_timestamp(after.heartbeat_at) > parse_timestamp(before.heartbeat_at)
    assert after.summary_raw is not None  # the summary was written back too (run.update())

    again = api.run(f"{PATH}/{run_id}")  # the same Api, right after
    assert (again.tags, again.notes, again.name) == (["edited", "keep"], "new notes", "renamed")
    assert again.config["lr"] == 0.5
    assert api.runs(PATH, {"tags": "edited"})[0].id == run_id

    clock.now += 61  # the other mirror's data expires: its incremental refresh sees the edit
    seen = other.run(f"{PATH}/{run_id}")
    assert (seen.tags, seen.notes, seen.config["lr"]) == (["edited", "keep"], "new notes", 0.5)


def test_summary_update(tmp_path, upstream, server):
    engine, result = upstream
    api = make_api(tmp_path, server.url)
    run = api.run(f"{PATH}/{result.run_ids[1]}")
    run.summary.update({"extra": 1.5, "nested": {"a": [1, 2]}})
    summary = loads(upstream_run(engine, run.id).summary_raw)
    assert summary["extra"] == 1.5 and summary["nested"] == {"a": [1, 2]}
    fresh = api.run(f"{PATH}/{run.id}")
    assert fresh.summary["extra"] == 1.5
    assert [r.id for r in api.runs(PATH, {"summary_metrics.extra": 1.5})] == [run.id]


def test_run_delete(tmp_path, upstream, server):
    engine, result = upstream
    api = make_api(tmp_path, server.url)
    victim = result.run_ids[2]
    api.run(f"{PATH}/{victim}").delete()
    assert upstream_run(engine, victim).deleted_at is not None
    assert victim not in [r.id for r in api.runs(PATH)]
    with pytest.raises(ValueError, match="Could not find run"):
        api.run(f"{PATH}/{victim}")
    # the server no longer lists it: a new mirror never sees it
    assert victim not in [r.id for r in make_api(tmp_path, server.url, "other").runs(PATH)]


def test_file_delete(tmp_path, upstream, server):
    engine, result = upstream
    api = make_api(tmp_path, server.url)
    run = api.run(f"{PATH}/{result.run_ids[0]}")
    names = [f.name for f in run.files()]
    victim = run.file(names[0])
    victim.delete()
    with session_scope(engine) as s:
        up = get_run(s, get_project(s, ENTITY, PROJECT).pk, run.id)
        assert F.get_file(s, up.pk, names[0]) is None
        assert F.get_file(s, up.pk, names[1]) is not None
    assert [f.name for f in api.run(f"{PATH}/{run.id}").files()] == names[1:]
    assert [f.name for f in make_api(tmp_path, server.url, "other").run(
        f"{PATH}/{run.id}").files()] == names[1:]


def test_upload_file_bytes_come_back(tmp_path, upstream, server):
    engine, result = upstream
    api = make_api(tmp_path, server.url)
    run = api.run(f"{PATH}/{result.run_ids[1]}")
    root = tmp_path / "work"
    (root / "sub").mkdir(parents=True)
    payload = "uploaded ✓\n".encode() + bytes(range(256))
    (root / "sub" / "notes.bin").write_bytes(payload)
    made = run.upload_file(str(root / "sub" / "notes.bin"), root=str(root))
    assert made.name == "sub/notes.bin" and made.size == len(payload)
    assert made.md5 == F.md5_b64(payload)

    with session_scope(engine) as s:  # upstream: metadata and bytes
        up = get_run(s, get_project(s, ENTITY, PROJECT).pk, run.id)
        row = F.get_file(s, up.pk, "sub/notes.bin")
        assert row is not None and row.size_bytes == len(payload)
        assert F.get_content(s, row.md5) == payload

    with api.run(f"{PATH}/{run.id}").file("sub/notes.bin").download(
            root=str(tmp_path / "dl"), replace=True) as fh:
        assert fh.buffer.read() == payload
    # a mirror that never saw the bytes downloads them from the server's file URL
    other = make_api(tmp_path, server.url, "other")
    got = other.run(f"{PATH}/{run.id}").file("sub/notes.bin").read_bytes()
    assert got == payload
    with pytest.raises(ValueError, match="within root"):
        run.upload_file(str(tmp_path / "elsewhere.txt"), root=str(root))


def test_upload_retries_a_busy_server(tmp_path, upstream, server):
    _, result = upstream
    api = make_api(tmp_path, server.url)
    run = api.run(f"{PATH}/{result.run_ids[0]}")
    (tmp_path / "a.txt").write_bytes(b"hello")
    server.faults = wandb_mirror.server.Faults(script=["429", "drop"], retry_after=0.01,
                                               paths=("/files/",))
    made = run.upload_file(str(tmp_path / "a.txt"), root=str(tmp_path))
    assert server.stats.snapshot()["faults"] == {"429": 1, "drop": 1}
    assert make_api(tmp_path, server.url, "other").run(f"{PATH}/{run.id}").file(
        made.name).read_bytes() == b"hello"


def test_upload_url_is_signed_for_put_only(tmp_path, upstream, server):
    _, result = upstream
    body = {"query": "mutation M($e: String!, $p: String!, $r: String!) { createRunFiles("
                     "input: {entityName: $e, projectName: $p, runName: $r, files: [\"x.txt\"]}"
                     ") { runID uploadHeaders files { name uploadUrl } } }",
            "variables": {"e": ENTITY, "p": PROJECT, "r": result.run_ids[0]}}
    with requests.Session() as http:
        answer = http.post(f"{server.url}/graphql", json=body, auth=("api", "k" * 40),
                           timeout=10).json()
        url = answer["data"]["createRunFiles"]["files"][0]["uploadUrl"]
        assert http.put(url, data=b"signed", timeout=10).status_code == 200
        assert http.put(url.replace("x.txt", "y.txt"), data=b"x", timeout=10).status_code == 401
        # the upload signature does not open downloads, nor a download signature uploads
        assert http.get(url, timeout=10).status_code == 401
        assert http.get(url, auth=("api", "k" * 40), timeout=10).content == b"signed"


# ----------------------------------------------------------------------------- artifacts


def test_use_artifact(tmp_path, upstream, server):
    engine, result = upstream
    api = make_api(tmp_path, server.url)
    run = api.run(f"{PATH}/{result.run_ids[3]}")
    art = api.artifact(f"{PATH}/{result.artifact_names[0]}")
    before = [a.id for a in run.used_artifacts()]
    run.use_artifact(art)
    with session_scope(engine) as s:
        version = A.get_version_by_id(s, art.id)
        links = s.scalars(select(RunArtifact).where(RunArtifact.version_pk == version.pk,
                                                    RunArtifact.direction == "input")).all()
        assert upstream_run(engine, run.id).pk in [link.run_pk for link in links]
    assert art.id in [a.id for a in api.run(f"{PATH}/{run.id}").used_artifacts()]
    assert art.id not in before
    other = make_api(tmp_path, server.url, "other")
    assert art.id in [a.id for a in other.run(f"{PATH}/{run.id}").used_artifacts()]


def test_log_artifact_adds_aliases(tmp_path, upstream, server):
    engine, result = upstream
    api = make_api(tmp_path, server.url)
    run = api.run(f"{PATH}/{result.run_ids[0]}")
    art = api.artifact(f"{PATH}/{result.artifact_names[0]}")
    coll = art.collection_name
    run.log_artifact(art, aliases=["best", "prod"])
    with session_scope(engine) as s:
        aliases = [a["alias"] for a in A.alias_nodes(s, A.get_version_by_id(s, art.id).pk)]
    assert {"best", "prod"} <= set(aliases)
    assert api.artifact(f"{PATH}/{coll}:best").id == art.id
    assert make_api(tmp_path, server.url, "other").artifact(f"{PATH}/{coll}:prod").id == art.id


def test_artifact_save(tmp_path, upstream, server):
    engine, result = upstream
    clock = Clock()
    other = make_api(tmp_path, server.url, "other", clock=clock)
    name = result.artifact_names[0]
    assert other.artifact(f"{PATH}/{name}").description != "edited"
    api = make_api(tmp_path, server.url)
    art = api.artifact(f"{PATH}/{name}")
    art.description = "edited"
    art.metadata = {"k": 1, "nested": {"x": [1, 2]}}
    art.aliases.append("staging")
    art.save()
    with session_scope(engine) as s:
        row = A.get_version_by_id(s, art.id)
        assert row.description == "edited"
        assert json.loads(row.metadata_raw) == {"k": 1, "nested": {"x": [1, 2]}}
        aliases = [a["alias"] for a in A.alias_nodes(s, row.pk)]
    assert "staging" in aliases and f"v{name.split(':v')[1]}" in aliases
    coll = art.collection_name
    again = api.artifact(f"{PATH}/{coll}:staging")
    assert (again.id, again.description, again.metadata["k"]) == (art.id, "edited", 1)
    clock.now += 61
    seen = other.artifact(f"{PATH}/{coll}:staging")
    assert (seen.id, seen.description) == (art.id, "edited")


def test_artifact_delete(tmp_path, upstream, server):
    engine, result = upstream
    api = make_api(tmp_path, server.url)
    latest = api.artifact(f"{PATH}/{result.artifact_names[-1]}")
    assert "latest" in latest.aliases
    with pytest.raises(GraphQLError, match="deleteAliases"):
        latest.delete()  # it has aliases: upstream refuses unless asked to drop them
    first = api.artifact(f"{PATH}/{result.artifact_names[0]}")
    first.delete(delete_aliases=True)
    with session_scope(engine) as s:
        assert A.get_version_by_id(s, first.id).deleted_at is not None
    with pytest.raises(Exception, match="(?i)not|no "):
        api.artifact(f"{PATH}/{result.artifact_names[0]}")
    with pytest.raises(Exception, match="(?i)not|no "):
        make_api(tmp_path, server.url, "other").artifact(f"{PATH}/{result.artifact_names[0]}")


# ----------------------------------------------------------------------------- refusals


def _every_write(tmp_path, run, art) -> list:
    """One call of each write method of a run and an artifact."""
    (tmp_path / "f.txt").write_text("x")
    return [run.update, lambda: run.summary.update({"a": 1}), run.delete,
            lambda: run.files()[0].delete(),
            lambda: run.upload_file(str(tmp_path / "f.txt"), root=str(tmp_path)),
            lambda: run.use_artifact(art), lambda: run.log_artifact(art), art.save,
            lambda: art.delete(delete_aliases=True)]


def test_offline_writes_raise_without_a_request(tmp_path, upstream, server):
    _, result = upstream
    make_api(tmp_path, server.url).runs(PATH)[0]  # mirror it once
    offline = make_api(tmp_path, server.url, offline=True, max_age=None)
    before = server.stats.requests
    run = offline.run(f"{PATH}/{result.run_ids[0]}")
    art = offline.artifact(f"{PATH}/{result.artifact_names[0]}")
    for call in _every_write(tmp_path, run, art):
        with pytest.raises(OfflineError, match="needs a connection"):
            call()
    assert server.stats.requests == before


def test_read_only_serve_refuses_every_write(tmp_path, upstream, serve):
    engine, result = upstream
    server = serve(engine, test_mode=True)  # the default: read-only
    api = make_api(tmp_path, server.url)
    run = api.run(f"{PATH}/{result.run_ids[0]}")
    art = api.artifact(f"{PATH}/{result.artifact_names[0]}")
    for call in _every_write(tmp_path, run, art):
        with pytest.raises(WriteUnsupportedError, match="--writable"):
            call()
    assert upstream_run(engine, run.id).deleted_at is None
    with requests.Session() as http:  # and no uploads
        put = http.put(f"{server.url}/files/{PATH}/{run.id}/f.txt", data=b"x",
                       auth=("api", "k" * 40), timeout=10)
        assert put.status_code == 405
        answer = http.post(f"{server.url}/graphql", auth=("api", "k" * 40), timeout=10, json={
            "query": 'mutation { deleteRun(input: {id: "x"}) { clientMutationId } }'}).json()
        assert answer["data"] is None and "not supported" in answer["errors"][0]["message"]


def test_writable_serve_still_answers_reads_the_same(tmp_path, upstream, serve):
    engine, result = upstream
    ro = serve(engine)
    rw = serve(engine, options=ServeOptions(writable=True))
    query = {"query": "query R($e: String!, $p: String!) { project(name: $p, entityName: $e) "
                      "{ runs(first: 10) { edges { node { name tags config } } } } }",
             "variables": {"e": ENTITY, "p": PROJECT}}
    with requests.Session() as http:
        answers = [http.post(f"{s.url}/graphql", json=query, auth=("api", "k" * 40),
                             timeout=10).json() for s in (ro, rw)]
    assert answers[0] == answers[1] and "errors" not in answers[0]


def test_upsert_bucket_by_name_creates_a_run(tmp_path, upstream, server):
    engine, _ = upstream
    body = {"query": "mutation U($n: String, $p: String, $e: String) { upsertBucket(input: "
                     "{name: $n, modelName: $p, entityName: $e, tags: [\"new\"], "
                     "config: \"{\\\"lr\\\": {\\\"value\\\": 1}}\"}) { inserted bucket { name "
                     "id state tags config } } }",
            "variables": {"n": "fresh01", "p": PROJECT, "e": ENTITY}}
    with requests.Session() as http:
        answer = http.post(f"{server.url}/graphql", json=body, auth=("api", "k" * 40),
                           timeout=10).json()["data"]["upsertBucket"]
        assert answer["inserted"] is True and answer["bucket"]["name"] == "fresh01"
        assert answer["bucket"]["state"] == "running" and answer["bucket"]["tags"] == ["new"]
        again = http.post(f"{server.url}/graphql", json=body, auth=("api", "k" * 40),
                          timeout=10).json()["data"]["upsertBucket"]
        assert again["inserted"] is False and again["bucket"]["id"] == answer["bucket"]["id"]
    run = make_api(tmp_path, server.url).run(f"{PATH}/fresh01")
    assert (run.tags, run.config) == (["new"], {"lr": 1})
    assert upstream_run(engine, "fresh01").storage_id == answer["bucket"]["id"]
