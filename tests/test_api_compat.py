"""Compatibility: the SAME probe functions run against the real ``wandb.Api`` (0.31, pointed at
``serve`` over the shared synth store) and ``wandb_mirror.Api`` (offline over that store file);
their results must be identical -- order, values and types.

Deliberate difference, documented: ``history(samples=N)`` is sampled deterministically by the
mirror (evenly spaced, first and last kept). W&B's cloud samples randomly; ``serve`` uses the
mirror's sampler, so here the two agree row for row.
"""
from __future__ import annotations

import filecmp
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import wandb_mirror

from .api_world import World, mirror_settings, same, time_limit, wandb_env

TEST_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def world(synth_store, tmp_path_factory) -> World:
    _, result = synth_store
    return World(result.entity, result.project, list(result.run_ids), list(result.sweep_names),
                 list(result.artifact_names), tmp_path_factory.mktemp("api_compat"))


@pytest.fixture(scope="module")
def apis(world, synth_store, served_synth):
    """``{"wandb": real client, "mirror": ours}`` over the same data."""
    wandb = pytest.importorskip("wandb")
    engine, _ = synth_store
    with wandb_env(world.tmp / "wandb_home"):
        real = wandb.Api(api_key="x" * 40, overrides={"base_url": served_synth.url}, timeout=30)
        ours = wandb_mirror.Api(settings=mirror_settings(engine.url.database, served_synth.url),
                                db=engine, offline=True, max_age=None)
        try:
            yield {"wandb": real, "mirror": ours}
        finally:
            from wandb.sdk import wandb_setup

            wandb_setup.teardown()


@pytest.fixture(autouse=True)
def _bounded():
    with time_limit(TEST_TIMEOUT_S):
        yield


# ----------------------------------------------------------------------------- probes

Probe = Callable[[Any, World, str], Any]
PROBES: dict[str, Probe] = {}


def probe(fn: Probe) -> Probe:
    PROBES[fn.__name__] = fn
    return fn


FILTERS: list[dict[str, Any]] = [
    {},
    {"state": "finished"},
    {"config.lr": {"$lt": 0.01}},
    {"config.batch_size": {"$in": [32, 64]}},
    {"$or": [{"state": "crashed"}, {"summary_metrics.loss": {"$lt": 0.5}}]},
    {"tags": "gpu"},
    {"config.optimizer.value.name": "adam"},
    {"summary_metrics.loss": {"$gt": 0.3}, "config.epochs": {"$gte": 10}},
    {"displayName": {"$regex": "^[a-m]"}},
]
ORDERS = ["+created_at", "-created_at", "-summary_metrics.loss", "+config.lr",
          "+summary_metrics.acc", "-heartbeat_at"]


@probe
def runs_listing(api: Any, w: World, tag: str) -> Any:
    out = []
    for filters in FILTERS:
        runs = api.runs(w.path, filters)
        out.append((len(runs), [r.id for r in runs]))
    return out


@probe
def runs_order(api: Any, w: World, tag: str) -> Any:
    return [[r.id for r in api.runs(w.path, {"state": {"$ne": "running"}}, order=o)]
            for o in ORDERS]


@probe
def runs_paging(api: Any, w: World, tag: str) -> Any:
    runs = api.runs(w.path, {"config.lr": {"$lt": 0.05}}, order="-summary_metrics.loss",
                    per_page=7)
    # runs[-1] differs on purpose: upstream indexes only the pages loaded so far (and an open
    # slice such as runs[5:] raises TypeError); the mirror loads everything first.
    return (runs[3].id, [r.id for r in runs[5:17]], len(runs), runs[20].id,
            [r.id for r in api.runs(w.path, per_page=1)[:3]])


RUN_FIELDS = ("id", "name", "storage_id", "state", "config", "rawconfig", "summary_metrics",
              "system_metrics", "tags", "group", "job_type", "notes", "created_at",
              "heartbeat_at", "path", "url", "sweep_name", "history_keys", "read_only",
              "history_line_count", "display_name", "commit", "description", "lastHistoryStep",
              "entity", "project", "json_config")


def plain(value: Any) -> Any:
    """Nested summary values as plain dicts (upstream wraps them in ``SummarySubDict``; the
    mirror returns plain dicts -- same keys and values)."""
    if hasattr(value, "items") and not isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def run_view(run: Any) -> dict[str, Any]:
    view = {f: getattr(run, f) for f in RUN_FIELDS}
    view["summary"] = {k: plain(run.summary[k]) for k in run.summary.keys()}
    view["user"] = run.user.username
    return view


@probe
def run_attributes(api: Any, w: World, tag: str) -> Any:
    listed = [run_view(r) for r in api.runs(w.path, order="+created_at")[:12]]
    single = [run_view(api.run(f"{w.path}/{rid}")) for rid in w.run_ids[:6]]
    return listed, single, run_view(api.run(f"{w.entity}/{w.project}/runs/{w.run_ids[1]}"))


def finite_runs(api: Any, w: World, n: int = 4) -> list[str]:
    """Runs whose history has no NaN: wandb-core cannot parse NaN in history rows (it fails
    with "invalid character 'N'"), the mirror can."""
    return [r.id for r in api.runs(w.path, {"summary_metrics.loss": {"$lt": 1e9}})[:n]]


@probe
def history_sampled(api: Any, w: World, tag: str) -> Any:
    out = []
    for rid in finite_runs(api, w):
        run = api.run(f"{w.path}/{rid}")
        out.append(run.history(samples=10, keys=["loss", "acc"]))
        out.append(run.history(samples=7))
        out.append(run.history(samples=1000, keys=["metric_0"], pandas=False))
        out.append(run.history(samples=5, stream="system", pandas=False))
    return out


@probe
def history_scan(api: Any, w: World, tag: str) -> Any:
    out = []
    for rid in finite_runs(api, w):
        run = api.run(f"{w.path}/{rid}")
        out.append(list(run.scan_history()))
        out.append(list(run.scan_history(keys=["loss", "metric_1"], page_size=13)))
        out.append(list(run.scan_history(min_step=20, max_step=61, page_size=9)))
        out.append(list(run.scan_history(keys=["epoch"], min_step=3)))
    return out


@probe
def histories_many(api: Any, w: World, tag: str) -> Any:
    runs = api.runs(w.path, {"state": "finished", "summary_metrics.loss": {"$lt": 1e9}},
                    per_page=100)
    return (runs.histories(samples=6, keys=["loss", "acc"], format="pandas"),
            runs.histories(samples=4, keys=["loss"], format="default"))


@probe
def files_and_download(api: Any, w: World, tag: str) -> Any:
    out = []
    root = w.tmp / f"files_{tag}"
    for rid in w.run_ids[:3]:
        run = api.run(f"{w.path}/{rid}")
        files = run.files()
        out.append((len(files), [(f.name, f.size, f.md5, f.mimetype, f.updated_at)
                                 for f in files]))
        out.append([f.name for f in run.files(names=["config.yaml", "nope.txt"])])
        f = run.file("config.yaml")
        with f.download(root=str(root / rid), replace=True) as fh:
            out.append(fh.read())
    return out


@probe
def sweeps(api: Any, w: World, tag: str) -> Any:
    out = []
    for name in w.sweep_names:
        sw = api.sweep(f"{w.path}/{name}")
        best = sw.best_run()
        out.append((sw.id, sw.name, sw.state, sw.config, sw.order, sw.expected_run_count,
                    best.id if best else None, [r.id for r in sw.runs], len(sw.runs),
                    (sw.best_run(order="-acc") or best).id, sw.url))
    return out


@probe
def reports(api: Any, w: World, tag: str) -> Any:
    return [(r.id, r.name, r.display_name, r.description, r.spec, r.updated_at, r.created_at,
             r.user, r.url) for r in api.reports(w.path)]


def artifact_view(a: Any) -> dict[str, Any]:
    return {"name": a.name, "version": a.version, "aliases": a.aliases, "type": a.type,
            "digest": a.digest, "size": a.size, "metadata": a.metadata, "id": a.id,
            "description": a.description, "state": a.state, "file_count": a.file_count,
            "created_at": a.created_at, "qualified_name": a.qualified_name,
            "source_name": a.source_name, "tags": a.tags, "entity": a.entity,
            "project": a.project}


@probe
def artifacts(api: Any, w: World, tag: str) -> Any:
    out = []
    for name in w.artifact_names[:4]:
        a = api.artifact(f"{w.path}/{name}")
        manifest = {p: (e.digest, e.size, e.ref) for p, e in a.manifest.entries.items()}
        files = [(f.name, f.size, f.md5) for f in a.files()]
        root = w.tmp / f"art_{tag}_{name.replace(':', '_')}"
        path = a.download(root=str(root))
        a.verify(str(root))
        contents = {str(p.relative_to(root)): p.read_bytes()
                    for p in sorted(Path(path).rglob("*")) if p.is_file()}
        out.append((artifact_view(a), manifest, files, contents))
    coll = w.artifact_names[0].split(":")[0]
    latest = api.artifact(f"{w.path}/{coll}:latest")
    out.append(artifact_view(latest))
    return out


@probe
def artifact_listings(api: Any, w: World, tag: str) -> Any:
    types = [t.name for t in api.artifact_types(w.path)]
    colls = [[c.name for c in api.artifact_collections(w.path, t)] for t in types]
    versions = [[(v.name, v.version, v.aliases) for v in api.artifacts(t, f"{w.path}/{c}")]
                for t, cs in zip(types, colls) for c in cs]
    runs = []
    for rid in w.run_ids[:10]:
        run = api.run(f"{w.path}/{rid}")
        runs.append(([a.name for a in run.logged_artifacts()],
                     [a.name for a in run.used_artifacts()]))
    return types, colls, versions, runs


@probe
def projects(api: Any, w: World, tag: str) -> Any:
    listed = [(p.name, p.entity, p.path, p.url) for p in api.projects(w.entity)]
    one = api.project(w.project, w.entity)
    return listed, (one.name, one.entity, one.created_at, one.id, one.path)


@probe
def lineage_and_collections(api: Any, w: World, tag: str) -> Any:
    out = []
    for name in w.artifact_names[:3]:
        a = api.artifact(f"{w.path}/{name}")
        logged = a.logged_by()
        out.append(([r.id for r in a.used_by()], logged.id if logged else None))
        coll = api.artifact_collection(a.type, f"{w.path}/{name.split(':')[0]}")
        out.append((coll.name, coll.type, coll.description, coll.is_sequence(),
                    [v.name for v in coll.artifacts()]))
    return out


@probe
def run_extras(api: Any, w: World, tag: str) -> Any:
    out = []
    for rid in w.run_ids[:8]:
        run = api.run(f"{w.path}/{rid}")
        sweep = run.sweep
        out.append((run.metadata, sweep.id if sweep else None, run.sweep_name))
    return out


@probe
def histories_polars(api: Any, w: World, tag: str) -> Any:
    runs = api.runs(w.path, {"state": "finished", "summary_metrics.loss": {"$lt": 1e9}})
    frame = runs.histories(samples=5, keys=["loss"], format="polars")
    return frame.to_pandas()


# ----------------------------------------------------------------------------- the test


@pytest.mark.parametrize("name", list(PROBES))
def test_same_results(name: str, apis: dict[str, Any], world: World) -> None:
    fn = PROBES[name]
    theirs = fn(apis["wandb"], world, "wandb")
    ours = fn(apis["mirror"], world, "mirror")
    same(theirs, ours, f"{name}")


def test_downloads_identical(apis: dict[str, Any], world: World) -> None:
    """The bytes each client wrote to disk are the same files."""
    for tag in ("wandb", "mirror"):
        assert any((world.tmp / f"files_{tag}").rglob("*")), "run files_and_download first"
    cmp = filecmp.dircmp(world.tmp / "files_wandb", world.tmp / "files_mirror")
    assert not cmp.left_only and not cmp.right_only and not cmp.diff_files
    for root, _, names in os.walk(world.tmp / "files_wandb"):
        for n in names:
            a = Path(root) / n
            b = world.tmp / "files_mirror" / a.relative_to(world.tmp / "files_wandb")
            assert a.read_bytes() == b.read_bytes()


def test_run_repr_is_readable(apis: dict[str, Any], world: World) -> None:
    run = apis["mirror"].run(f"{world.path}/{world.run_ids[0]}")
    assert repr(run) == repr(apis["wandb"].run(f"{world.path}/{world.run_ids[0]}"))
    assert world.run_ids[0] in run._repr_html_()
