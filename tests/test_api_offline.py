"""What the mirror adds or decides on its own (no wandb client needed): deterministic
sampling, the union of keys, fast frames, errors, paging, reprs."""
from __future__ import annotations

import pandas as pd
import pytest

import wandb_mirror
from wandb_mirror.api import HistoryScan, RunNotFoundError
from wandb_mirror.errors import FilterError, OfflineError
from wandb_mirror.store import files as store_files
from wandb_mirror.store.engine import session_scope
from wandb_mirror.store.models import Run as RunRow

from .api_world import mirror_settings


@pytest.fixture(scope="module")
def api(synth_store):
    engine, _ = synth_store
    return wandb_mirror.Api(settings=mirror_settings(engine.url.database, "http://127.0.0.1:9"),
                            db=engine, offline=True, max_age=None)


@pytest.fixture(scope="module")
def res(synth_store):
    return synth_store[1]


def path(res, rid: str) -> str:
    return f"{res.entity}/{res.project}/{rid}"


def test_sampling_is_deterministic_and_keeps_first_and_last(api, res):
    run = api.run(path(res, res.run_ids[2]))
    everything = list(run.scan_history())
    a = run.history(samples=9, pandas=False)
    assert a == run.history(samples=9, pandas=False)
    assert len(a) == 9
    assert a[0] == everything[0] and a[-1] == everything[-1]
    keyed = run.history(samples=5, keys=["loss"], pandas=False)
    with_loss = [r for r in everything if "loss" in r]
    assert keyed[0]["_step"] == with_loss[0]["_step"]
    assert keyed[-1]["_step"] == with_loss[-1]["_step"]
    assert all(set(r) == {"_step", "loss"} for r in keyed)


def test_keys_all_vs_union(api, res):
    run = api.run(path(res, res.run_ids[3]))
    rows = list(run.scan_history())
    both = run.history(samples=10 ** 6, keys=["epoch", "metric_2"], pandas=False)
    union = run.history(samples=10 ** 6, keys=["epoch", "metric_2"], pandas=False, union=True)
    assert [r["_step"] for r in both] == [r["_step"] for r in rows
                                          if "epoch" in r and "metric_2" in r]
    assert [r["_step"] for r in union] == [r["_step"] for r in rows
                                           if "epoch" in r or "metric_2" in r]
    assert len(union) > len(both)
    scan_union = list(run.scan_history(keys=["epoch", "metric_2"], union=True))
    assert [r["_step"] for r in scan_union] == [r["_step"] for r in union]


def test_history_frame_fast_path(api, res):
    run = api.run(path(res, res.run_ids[0]))
    frame = run.history_frame()
    rows = pd.DataFrame.from_records(list(run.scan_history()))
    assert len(frame) == len(rows) == run.history_line_count
    assert frame["_step"].dtype == "int64" and frame["loss"].dtype == "float64"
    assert frame["_step"].tolist() == rows["_step"].tolist()
    pl_frame = run.history_frame(keys=["loss"], format="polars")
    assert pl_frame.columns == ["_step", "loss"]
    assert run.history(samples=None, pandas=False) == list(run.scan_history())


def test_histories_one_query_pandas_and_polars(api, res):
    runs = api.runs(f"{res.entity}/{res.project}", {"state": "finished"})
    pdf = runs.histories(samples=5, keys=["loss", "acc"], format="pandas")
    assert list(pdf.columns) == ["_step", "acc", "loss", "run_id"]
    assert set(pdf["run_id"]) <= {r.id for r in runs}
    plf = runs.histories(samples=5, keys=["loss", "acc"], format="polars")
    assert plf.shape == pdf.shape
    rows = runs.histories(samples=5, keys=["loss"])
    assert all("run_id" in r for r in rows)


def test_scan_history_iterator_protocol(api, res):
    run = api.run(path(res, res.run_ids[1]))
    scan = run.scan_history(page_size=3, min_step=5, max_step=9)
    assert isinstance(scan, HistoryScan) and scan.max_step == 8
    first = next(scan)
    assert first["_step"] >= 5
    assert [r["_step"] for r in scan] == sorted(r["_step"] for r in scan)
    with pytest.raises(ValueError):
        run.scan_history(keys="loss")  # type: ignore[arg-type]
    assert list(run.scan_history(min_step=10 ** 9)) == []


def test_errors_name_the_problem(api, res):
    proj = f"{res.entity}/{res.project}"
    with pytest.raises(FilterError):
        api.runs(proj, {"config.lr": {"$bogus": 1}})
    with pytest.raises(RunNotFoundError):
        api.run(f"{proj}/nosuchrun")
    with pytest.raises(ValueError, match="Could not find sweep"):
        api.sweep(f"{proj}/nosweep")
    with pytest.raises(ValueError, match="not found"):
        api.artifact(f"{proj}/nothing:v0")
    with pytest.raises(ValueError, match="Expected artifact type"):
        api.artifact(f"{proj}/{res.artifact_names[0]}", type="not-this-type")
    with pytest.raises(OfflineError, match="wandb-mirror sync other/project"):
        api.runs("other/project")[0]


def test_paging_and_indexing(api, res):
    proj = f"{res.entity}/{res.project}"
    runs = api.runs(proj, per_page=4)
    everything = [r.id for r in api.runs(proj, per_page=1000)]
    assert len(runs) == len(everything)
    assert runs[5].id == everything[5]
    assert [r.id for r in runs[3:9]] == everything[3:9]
    assert runs[-1].id == everything[-1]
    assert [r.id for r in runs] == everything


def test_paths_defaults_and_from_path(api, res, synth_store):
    engine, _ = synth_store
    d = wandb_mirror.Api(settings=mirror_settings(engine.url.database, "http://127.0.0.1:9",
                                                  project=res.project),
                         db=engine, offline=True, max_age=None)
    assert d.default_entity == res.entity  # the only entity in the store
    rid = res.run_ids[0]
    assert d.run(rid).id == rid
    assert d.run(f"{res.project}/{rid}").id == rid
    assert d.run(f"{res.entity}/{res.project}/runs/{rid}").id == rid
    assert d.from_path(f"{res.entity}/{res.project}/runs/{rid}").id == rid
    assert d.from_path(f"{res.entity}/{res.project}").name == res.project
    assert d.artifact(res.artifact_names[0]).name == res.artifact_names[0]


def test_reprs(api, res):
    run = api.run(path(res, res.run_ids[0]))
    assert repr(run).startswith(f"<Run {res.entity}/{res.project}/{run.id} (")
    assert repr(api.runs(f"{res.entity}/{res.project}")) == f"<Runs {res.entity}/{res.project}>"
    assert "offline" in repr(api)
    assert "<table>" in run._repr_html_()


def test_file_bytes_not_cached_offline(api, res, synth_store):
    engine, _ = synth_store
    run = api.run(path(res, res.run_ids[0]))
    with session_scope(engine) as s:
        row = s.get(RunRow, run._pk)
        store_files.upsert_files(s, row, [{"name": "uncached.bin", "sizeBytes": 3,
                                           "md5": "AAAAAAAAAAAAAAAAAAAAAA==",
                                           "url": "http://127.0.0.1:9/x"}])
    try:
        with pytest.raises(OfflineError, match="offline"):
            run.file("uncached.bin").read_bytes()
    finally:
        from sqlalchemy import delete

        from wandb_mirror.store.models import RunFile

        with session_scope(engine) as s:
            s.execute(delete(RunFile).where(RunFile.name == "uncached.bin"))


def test_existing_download_needs_replace(api, res, tmp_path):
    f = api.run(path(res, res.run_ids[0])).file("config.yaml")
    f.download(root=str(tmp_path)).close()
    with pytest.raises(ValueError, match="already exists"):
        f.download(root=str(tmp_path))
    f.download(root=str(tmp_path), exist_ok=True).close()
    f.download(root=str(tmp_path), replace=True).close()


def test_caches_follow_store_writes(tmp_path):
    """Cached run lists and sampled histories are dropped as soon as the store changes."""
    from wandb_mirror import synth
    from wandb_mirror.store import history as H
    from wandb_mirror.store import open_store
    from wandb_mirror.store.runs import get_project, upsert_runs

    engine = open_store(tmp_path / "small.db")
    res = synth.generate(engine, entity="c", project="p", runs=3, history_steps=10, sweeps=0,
                         files_per_run=0, artifact_collections=0, reports=0)
    api = wandb_mirror.Api(settings=mirror_settings(tmp_path / "small.db", "http://127.0.0.1:9"),
                           db=engine, offline=True, max_age=None)
    assert len(api.runs("c/p")) == 3
    run = api.run(f"c/p/{res.run_ids[0]}")
    rows = run.history(samples=100, keys=["loss"], pandas=False)
    rows[0]["loss"] = "mutated by the caller"
    again = run.history(samples=100, keys=["loss"], pandas=False)
    assert again[0]["loss"] != "mutated by the caller"
    last = rows[-1]["_step"]
    with session_scope(engine) as s:
        H.append_rows(s, run._pk, [{"_step": last + 5, "loss": 0.01}])
        upsert_runs(s, get_project(s, "c", "p"), [{"name": "added01", "createdAt":
                                                   "2030-01-01T00:00:00", "state": "finished"}])
    assert run.history(samples=100, keys=["loss"], pandas=False)[-1] == {"_step": last + 5,
                                                                         "loss": 0.01}
    assert [r.id for r in api.runs("c/p")][-1] == "added01"
    engine.dispose()
