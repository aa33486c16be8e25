"""The synthetic workload generator: deterministic, W&B-shaped, and written exactly as the
store's own upsert functions would write it."""
from __future__ import annotations

import math

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from wandb_mirror import synth
from wandb_mirror.store import artifacts as A
from wandb_mirror.store import files as F
from wandb_mirror.store import history as H
from wandb_mirror.store import open_store
from wandb_mirror.store import reports as R
from wandb_mirror.store import sweeps as S
from wandb_mirror.store.engine import session_scope
from wandb_mirror.store.models import Run, RunArtifact, RunValue, User
from wandb_mirror.store.runs import get_project, run_node, upsert_project, upsert_runs
from wandb_mirror.store.values import loads

from .store_snapshot import same_project

SMALL = dict(runs=12, history_steps=25, history_keys=6, system_events=3, seed=7)


def test_same_seed_same_store(tmp_path):
    a = open_store(tmp_path / "a.db")
    b = open_store(tmp_path / "b.db")
    ra = synth.generate(a, **SMALL)
    rb = synth.generate(b, **SMALL)
    assert ra == rb
    same_project(a, b, "synth", "demo", with_contents=True)
    c = open_store(tmp_path / "c.db")
    assert synth.generate(c, **{**SMALL, "seed": 8}).run_ids != ra.run_ids


def test_runs_are_wandb_shaped(synth_store):
    engine, result = synth_store
    with Session(engine) as s:
        project = get_project(s, "synth", "demo")
        runs = list(s.scalars(select(Run).where(Run.project_pk == project.pk)))
        assert len(runs) == len(result.run_ids)
        states = {r.state for r in runs}
        assert "running" in states and "finished" in states
        assert len({r.user_pk for r in runs}) >= 2 and len({r.group for r in runs}) >= 3
        odd = 0
        for run in runs:
            config = loads(run.config_raw)
            assert config["lr"] == {"desc": None, "value": config["lr"]["value"]}
            assert isinstance(config["optimizer"]["value"]["schedule"], dict)
            summary = loads(run.summary_raw)
            odd += any(isinstance(v, float) and not math.isfinite(v) for v in summary.values())
            assert isinstance(loads(run.tags_raw), list)
            rows = H.read_rows(s, run.pk)
            assert len(rows) == run.history_line_count and rows[0]["_step"] > 0
            assert loads(run.history_keys_raw)["lastStep"] == rows[-1]["_step"]
            assert len(H.read_rows(s, run.pk, keys=["metric_0"])) < len(rows)  # sparse key
            assert H.read_rows(s, run.pk, stream="events")
        assert odd >= 3  # NaN / ±inf summaries


def test_files_sweeps_artifacts_reports(synth_store):
    engine, result = synth_store
    with Session(engine) as s:
        project = get_project(s, "synth", "demo")
        run = s.scalar(select(Run).where(Run.project_pk == project.pk))
        for f in F.list_files(s, run.pk):
            data = F.get_content(s, f.md5)
            assert data is not None and F.md5_b64(data) == f.md5 and len(data) == f.size_bytes
        for name in result.sweep_names:
            sweep = S.get_sweep(s, project.pk, name)
            cfg = yaml.safe_load(sweep.config_raw)
            assert cfg["metric"]["goal"] in ("minimize", "maximize")
            attached = s.scalars(select(Run).where(Run.sweep_name == name)).all()
            assert attached and sweep.run_count == len(attached)
        for coll in A.list_collections(s, project.pk):
            versions = A.list_versions(s, coll.pk)
            assert A.resolve_alias(s, coll.pk, "latest").pk == versions[-1].pk
            for v in versions:
                manifest = loads(v.manifest_raw)
                refs = [e for e in manifest["contents"].values() if "ref" in e]
                assert len(refs) == 1
                assert v.digest == A.manifest_digest(manifest["contents"])
                assert A.resolve_alias(s, coll.pk, f"v{v.version_index}").pk == v.pk
        assert s.scalar(select(RunArtifact).where(RunArtifact.direction == "input")) is not None
        assert [r.upstream_id for r in R.list_reports(s, project.pk)] == result.report_ids


def test_bulk_runs_equal_upsert_runs(tmp_path):
    """synth's bulk insert writes the rows and value index ``upsert_runs`` writes."""
    a = open_store(tmp_path / "a.db")
    synth.generate(a, runs=15, history_steps=0, system_events=0, files_per_run=0,
                   artifact_collections=0, reports=0, seed=3)
    b = open_store(tmp_path / "b.db")
    with Session(a) as sa, session_scope(b) as sb:
        pa = get_project(sa, "synth", "demo")
        pb = upsert_project(sb, "synth", "demo", internal_id=pa.internal_id)
        nodes = []
        for run in sa.scalars(select(Run).where(Run.project_pk == pa.pk).order_by(Run.pk)):
            node = run_node(run, sa.get(User, run.user_pk))
            node["user"] = {k: node["user"][k] for k in ("name", "username")}
            nodes.append(node)
        upsert_runs(sb, pb, nodes)
    with Session(a) as sa, Session(b) as sb:
        for ra, rb in zip(sa.scalars(select(Run).order_by(Run.pk)), sb.scalars(select(Run).order_by(Run.pk))):
            na, nb = run_node(ra, sa.get(User, ra.user_pk)), run_node(rb, sb.get(User, rb.user_pk))
            na["user"].pop("id"), nb["user"].pop("id")
            na["user"].pop("email"), nb["user"].pop("email")
            assert na == nb

            def index(s, pk):
                return sorted((v.root, v.path, v.elem, v.kind, repr(v.num), v.nan, v.txt, v.size)
                              for v in s.scalars(select(RunValue).where(RunValue.run_pk == pk)))
            assert index(sa, ra.pk) == index(sb, rb.pk)
