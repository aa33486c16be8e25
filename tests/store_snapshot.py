"""A canonical picture of one project in a store, read through the store's read functions.

Two stores hold the same project iff their snapshots serialise to the same text (NaN, int vs
float and bool vs int stay distinct in that text). Upstream-local details are left out: row
keys, sync bookkeeping, and file URLs (each mirror hands out its own).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from wandb_mirror.store import artifacts as A
from wandb_mirror.store import files as F
from wandb_mirror.store import history as H
from wandb_mirror.store import reports as R
from wandb_mirror.store import sweeps as S
from wandb_mirror.store import values
from wandb_mirror.store.engine import session_scope
from wandb_mirror.store.models import ArtifactType, Run, User
from wandb_mirror.store.runs import get_project, run_node


def snapshot(engine, entity: str, project: str, *, with_contents: bool = False) -> dict[str, Any]:
    with session_scope(engine) as s:
        p = get_project(s, entity, project)
        assert p is not None, f"{entity}/{project} not in store"
        out: dict[str, Any] = {"project": [p.entity, p.name, p.internal_id, p.created_at,
                                           p.is_benchmark]}
        runs = {}
        for run in s.scalars(select(Run).where(Run.project_pk == p.pk, Run.deleted_at.is_(None))
                             .order_by(Run.run_id)):
            user = s.get(User, run.user_pk) if run.user_pk else None
            node = run_node(run, user)
            files = []
            for f in F.list_files(s, run.pk):
                row = F.file_node(f)
                row.pop("url", None)
                row.pop("directUrl", None)
                if with_contents:
                    row["content"] = (F.get_content(s, f.md5) or b"").hex()
                files.append(row)
            runs[run.run_id] = {
                "node": node,
                "history": H.read_rows(s, run.pk),
                "events": H.read_rows(s, run.pk, stream="events"),
                "files": files,
                "inputs": sorted(v.upstream_id for v in A.run_artifact_versions(s, run.pk, "input")),
                "outputs": sorted(v.upstream_id for v in A.run_artifact_versions(s, run.pk, "output")),
            }
        out["runs"] = runs
        out["sweeps"] = [S.sweep_node(w) for w in S.list_sweeps(s, p.pk)]
        out["reports"] = sorted((R.report_node(r, s.get(User, r.user_pk) if r.user_pk else None)
                                 for r in R.list_reports(s, p.pk)), key=lambda n: n["id"])
        arts = []
        for coll in A.list_collections(s, p.pk):
            type_row = s.get(ArtifactType, coll.type_pk)
            for v in A.list_versions(s, coll.pk):
                arts.append({"node": A.artifact_node(v, coll, type_row,
                                                     A.alias_nodes(s, v.pk)),
                             "manifest": A.manifest_text(v)})
        out["artifacts"] = arts
    return out


def same_project(a, b, entity: str, project: str, **kw: Any) -> None:
    """Assert two stores hold the same project, pointing at the first difference."""
    sa, sb = snapshot(a, entity, project, **kw), snapshot(b, entity, project, **kw)
    for key in sa:
        if key == "runs":
            assert sorted(sa["runs"]) == sorted(sb["runs"]), "different run ids"
            for rid in sa["runs"]:
                for part in sa["runs"][rid]:
                    ta = values.dumps(sa["runs"][rid][part])
                    tb = values.dumps(sb["runs"][rid][part])
                    assert ta == tb, f"run {rid}: {part} differs"
        else:
            assert values.dumps(sa[key]) == values.dumps(sb[key]), f"{key} differs"
