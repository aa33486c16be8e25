"""Proof: the real ``wandb`` 0.31 client, pointed at ``serve`` over a synthetic store, sees
exactly what the store holds.

Each check compares what ``wandb.Api()`` returns with the store read directly (store modules,
query engine, history module). The client's Go sidecar (wandb-core) is torn down at the end;
every test is bounded by an alarm so a hang fails instead of blocking the suite.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from wandb_mirror.query import count_runs, select_runs
from wandb_mirror.store import artifacts as A
from wandb_mirror.store import files as F
from wandb_mirror.store import history as H
from wandb_mirror.store import reports as R
from wandb_mirror.store import sweeps as S
from wandb_mirror.store.models import Project, User
from wandb_mirror.store.runs import get_project, get_run
from wandb_mirror.store.values import canonical_json, loads, unwrap_config

from .api_world import time_limit, wandb_env

TEST_TIMEOUT_S = 180
ENTITY, PROJECT = "synth", "demo"


@pytest.fixture(scope="module")
def wandb_dirs(tmp_path_factory):
    """Keep every WANDB_* directory (and telemetry) away from the user's home."""
    root = tmp_path_factory.mktemp("wandb_home")
    with wandb_env(root):
        yield root


@pytest.fixture(scope="module")
def api(wandb_dirs, served_synth):
    wandb = pytest.importorskip("wandb")
    client = wandb.Api(api_key="x" * 40, overrides={"base_url": served_synth.url}, timeout=30)
    yield client
    from wandb.sdk import wandb_setup

    wandb_setup.teardown()  # stops the wandb-core process


@pytest.fixture(autouse=True)
def _bounded():
    with time_limit(TEST_TIMEOUT_S):
        yield


@pytest.fixture(scope="module")
def db(synth_store):
    engine, result = synth_store
    with Session(engine) as session:
        yield session, get_project(session, ENTITY, PROJECT), result


def canon(obj) -> str:
    return canonical_json(obj)


def store_ids(session, project, filters=None, order=None):
    return [r.run_id for r in select_runs(session, project.pk, filters, order)]


# ----------------------------------------------------------------------------- projects, runs


def test_viewer_default_entity_and_projects(api, db):
    session, _project, _ = db
    assert api.default_entity == ENTITY
    names = sorted(p.name for p in api.projects(ENTITY))
    expected = sorted(session.scalars(select(Project.name).where(Project.entity == ENTITY)))
    assert names == expected


@pytest.mark.parametrize("filters,order", [
    (None, None),
    ({"state": "finished"}, "-created_at"),
    ({"config.lr": {"$gt": 0.001}}, "+config.lr"),
    ({"tags": {"$in": ["baseline", "prod"]}}, "-summary_metrics.acc"),
    ({"$or": [{"summary_metrics.loss": {"$lt": 1.0}}, {"state": "running"}]}, "+summary_metrics.loss"),
    ({"display_name": {"$regex": "^(eager|brisk)-"}}, None),
])
def test_runs_filters_orders_len_and_paging(api, db, filters, order):
    session, project, _ = db
    expected = store_ids(session, project, filters, order)
    kwargs = {"filters": filters, "per_page": 7}
    if order:
        kwargs["order"] = order
    runs = api.runs(f"{ENTITY}/{PROJECT}", **kwargs)
    assert len(runs) == count_runs(session, project.pk, filters) == len(expected)
    assert [r.id for r in runs] == expected  # 7 per page: pages past the first


def test_lazy_listing_loads_config_on_demand(api, db, served_synth):
    session, project, _ = db
    runs = list(api.runs(f"{ENTITY}/{PROJECT}", per_page=20))
    before = served_synth.stats.snapshot()["operations"].get("Run", 0)
    for run in runs[:3]:
        row = get_run(session, project.pk, run.id)
        cfg = unwrap_config(loads(row.config_raw))
        cfg.pop("_wandb", None)
        cfg.pop("wandb_version", None)
        assert canon(dict(run.config)) == canon(cfg)
    after = served_synth.stats.snapshot()["operations"].get("Run", 0)
    assert after - before == 3  # the N+1 pattern of lazy listing


def test_non_lazy_listing_has_full_data(api, db, served_synth):
    session, project, _ = db
    before = served_synth.stats.snapshot()["operations"].get("Run", 0)
    runs = list(api.runs(f"{ENTITY}/{PROJECT}", per_page=25, lazy=False,
                         filters={"state": {"$ne": "running"}}))
    assert len(runs) == count_runs(session, project.pk, {"state": {"$ne": "running"}})
    for run in runs:
        row = get_run(session, project.pk, run.id)
        assert canon(run.summary_metrics) == canon(loads(row.summary_raw))
    assert served_synth.stats.snapshot()["operations"].get("Run", 0) == before


def test_run_attributes_config_and_summary(api, db):
    session, project, result = db
    for run_id in result.run_ids[:5]:
        row = get_run(session, project.pk, run_id)
        run = api.run(f"{ENTITY}/{PROJECT}/{run_id}")
        assert run.id == row.run_id and run.name == row.display_name
        assert run.storage_id == row.storage_id
        assert run.state == row.state and run.tags == loads(row.tags_raw)
        assert run.group == row.group and run.job_type == row.job_type
        assert run.created_at == row.created_at and run.heartbeat_at == row.heartbeat_at
        assert run.sweep_name == row.sweep_name and run.notes == row.notes
        assert run.history_line_count == row.history_line_count
        assert run.user.username == session.get(User, row.user_pk).username
        raw = unwrap_config(loads(row.config_raw))
        assert canon(run.rawconfig) == canon(raw)
        assert canon(run.summary_metrics) == canon(loads(row.summary_raw))
        assert canon(run.system_metrics) == canon(loads(row.system_metrics_raw))
        assert run.lastHistoryStep == H.last_step(session, row.pk)


def test_summary_keeps_nan_and_infinity(api, db):
    session, project, result = db
    odd = [rid for i, rid in enumerate(result.run_ids) if i % 13 == 4 or i % 7 == 3][:3]
    for run_id in odd:
        run = api.run(f"{ENTITY}/{PROJECT}/{run_id}")
        values = list(run.summary_metrics.values())
        assert any(isinstance(v, float) and (math.isnan(v) or math.isinf(v)) for v in values)


# ----------------------------------------------------------------------------- history


def _pick_run(db, index=4):
    session, project, result = db
    return session, get_run(session, project.pk, result.run_ids[index])


def test_history_with_keys_matches_store(api, db):
    session, row = _pick_run(db)
    run = api.run(f"{ENTITY}/{PROJECT}/{row.run_id}")
    got = run.history(keys=["loss", "metric_0"], pandas=False)
    want = H.sample_rows(session, row.pk, keys=["_step", "loss", "metric_0"], samples=500)
    assert canon(got) == canon(want)
    assert got and all(set(r) == {"_step", "loss", "metric_0"} for r in got)


def test_history_without_keys_and_sampling_is_deterministic(api, db):
    session, row = _pick_run(db, 5)
    run = api.run(f"{ENTITY}/{PROJECT}/{row.run_id}")
    assert canon(run.history(pandas=False)) == canon(H.sample_rows(session, row.pk, samples=500))
    a = run.history(samples=10, pandas=False)
    b = run.history(samples=10, pandas=False)
    assert canon(a) == canon(b) and len(a) == 10
    all_rows = H.read_rows(session, row.pk)
    assert a[0]["_step"] == all_rows[0]["_step"] and a[-1]["_step"] == all_rows[-1]["_step"]
    frame = run.history(keys=["loss"])  # pandas
    assert list(frame["_step"]) == [r["_step"] for r in H.read_rows(session, row.pk, keys=["loss"])]


def test_scan_history_is_row_exact(api, db):
    session, row = _pick_run(db, 4)  # a diverged run: its last loss is NaN
    run = api.run(f"{ENTITY}/{PROJECT}/{row.run_id}")
    got = list(run.scan_history(page_size=37))
    assert canon(got) == canon(H.read_rows(session, row.pk))
    got_keys = list(run.scan_history(keys=["loss", "metric_2"], page_size=23))
    want_keys = [{k: r[k] for k in ("_step", "loss", "metric_2")}
                 for r in H.read_rows(session, row.pk, keys=["loss", "metric_2"])]
    assert canon(got_keys) == canon(want_keys)
    assert math.isnan(got[-1]["loss"])


def test_system_events(api, db):
    session, row = _pick_run(db, 6)
    run = api.run(f"{ENTITY}/{PROJECT}/{row.run_id}")
    got = run.history(stream="system", pandas=False)
    assert canon(got) == canon(H.read_rows(session, row.pk, stream="events"))


# ----------------------------------------------------------------------------- files


def test_files_listing_and_download_bytes(api, db, tmp_path: Path):
    session, row = _pick_run(db, 7)
    run = api.run(f"{ENTITY}/{PROJECT}/{row.run_id}")
    files = list(run.files(per_page=2))
    stored = F.list_files(session, row.pk)
    assert len(run.files()) == len(stored)
    assert [(f.name, f.size, f.md5, f.mimetype) for f in files] == \
        [(s.name, s.size_bytes, s.md5, s.mimetype) for s in stored]
    for f, s in zip(files, stored):
        path = f.download(root=str(tmp_path), replace=True).name
        assert Path(path).read_bytes() == F.get_content(session, s.md5)
    one = run.file("config.yaml")
    assert one.name == "config.yaml"


# ----------------------------------------------------------------------------- sweeps, reports


def test_sweep_and_best_run(api, db):
    session, project, result = db
    for name in result.sweep_names:
        row = S.get_sweep(session, project.pk, name)
        sweep = api.sweep(f"{ENTITY}/{PROJECT}/{name}")
        assert sweep.id == name and sweep.state == row.state
        assert sweep.config == yaml.safe_load(row.config_raw)
        metric = sweep.config["metric"]
        sign = "+" if metric["goal"] == "minimize" else "-"
        expected = select_runs(session, project.pk, {"$and": [{"sweep": name}]},
                               f"{sign}summary_metrics.{metric['name']}", limit=1)
        best = sweep.best_run()
        assert best is not None and best.id == expected[0].run_id
        assert sorted(r.id for r in sweep.runs) == sorted(store_ids(session, project, {"sweep": name}))


def test_reports(api, db):
    session, project, _ = db
    got = list(api.reports(f"{ENTITY}/{PROJECT}"))
    stored = R.list_reports(session, project.pk)
    assert [(r.id, r.name, r.display_name, r.description) for r in got] == \
        [(s.upstream_id, s.name, s.display_name, s.description) for s in stored]
    assert canon(got[0].spec) == canon(loads(stored[0].spec_raw))


# ----------------------------------------------------------------------------- artifacts


@pytest.mark.parametrize("name,version", [("mnist-train:latest", 2), ("mnist-train:v1", 1),
                                          ("resnet:baseline", 0)])
def test_artifact_by_alias_files_download_and_manifest(api, db, tmp_path: Path, name, version):
    session, project, _ = db
    row = A.get_version(session, project.pk, name)
    assert row.version_index == version
    art = api.artifact(f"{ENTITY}/{PROJECT}/{name}")
    assert art.version == f"v{version}" and art.id == row.upstream_id
    assert art.digest == row.digest and art.size == row.size
    assert canon(art.metadata) == canon(loads(row.metadata_raw))
    aliases = [a["alias"] for a in A.alias_nodes(session, row.pk)]
    assert sorted(art.aliases) == sorted(a for a in aliases if not A.VERSION_ALIAS.match(a))
    stored = A.list_entries(session, row.pk, stored_only=True)
    assert sorted(f.name for f in art.files()) == sorted(e.path for e in stored)
    manifest = loads(row.manifest_raw)
    assert sorted(art.manifest.entries) == sorted(manifest["contents"])
    ref = art.manifest.entries["refs/remote.bin"]
    assert ref.ref == manifest["contents"]["refs/remote.bin"]["ref"]
    root = Path(art.download(root=str(tmp_path / "dl")))
    for entry in stored:
        assert (root / entry.path).read_bytes() == F.get_content(session, entry.digest)


def test_run_artifact_links(api, db):
    session, project, _ = db
    from wandb_mirror.store.models import RunArtifact, Run

    link = session.scalars(select(RunArtifact).where(RunArtifact.direction == "output")).first()
    run = api.run(f"{ENTITY}/{PROJECT}/{session.get(Run, link.run_pk).run_id}")
    logged = {a.id for a in run.logged_artifacts()}
    expected = {v.upstream_id for v in A.run_artifact_versions(session, link.run_pk, "output")}
    assert logged == expected and logged
    art = api.artifact(f"{ENTITY}/{PROJECT}/mnist-train:v0")
    assert art.logged_by() is not None


def test_scan_history_through_parquet_export(api, db, synth_store, serve):
    """With ``export_parquet`` finished runs' history goes out as a parquet file."""
    import wandb

    from wandb_mirror.server import ServeOptions

    engine, _ = synth_store
    server = serve(engine, options=ServeOptions(export_parquet=True), test_mode=True)
    client = wandb.Api(api_key="y" * 40, overrides={"base_url": server.url}, timeout=30)
    session, project, result = db
    row = next(r for r in (get_run(session, project.pk, rid) for rid in result.run_ids)
               if r.state == "finished")
    got = list(client.run(f"{ENTITY}/{PROJECT}/{row.run_id}").scan_history())
    dense = [{k: v for k, v in r.items() if v is not None} for r in got]
    assert canon(dense) == canon(H.read_rows(session, row.pk))
    assert server.stats.snapshot()["paths"].get("parquet") == 1
