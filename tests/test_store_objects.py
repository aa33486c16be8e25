"""Round trips of the store's object modules: files, sweeps, reports, artifacts take GraphQL
nodes and give the same nodes back."""
from __future__ import annotations

import pytest

from wandb_mirror.errors import StoreError
from wandb_mirror.store import artifacts as A
from wandb_mirror.store import files as F
from wandb_mirror.store import reports as R
from wandb_mirror.store import sweeps as S
from wandb_mirror.store.engine import session_scope
from wandb_mirror.store.models import ArtifactCollection, ArtifactType, User
from wandb_mirror.store.runs import upsert_project, upsert_runs
from wandb_mirror.store.values import dumps


def _project_and_run(session):
    project = upsert_project(session, "e", "p", internal_id="7")
    (run,) = upsert_runs(session, project, [{"name": "r1", "createdAt": "2024-01-01T00:00:00"}])
    return project, run


def test_files_round_trip_and_content_cache(migrated_store):
    node = {"id": "RmlsZTox", "name": "dir/a b.txt", "url": "https://api/x", "directUrl": "https://s3/x",
            "sizeBytes": 5, "mimetype": "text/plain", "updatedAt": "2024-01-01T00:00:01",
            "md5": F.md5_b64(b"hello")}
    with session_scope(migrated_store) as s:
        _, run = _project_and_run(s)
        F.upsert_files(s, run, [node])
        F.upsert_files(s, run, [{"name": "dir/a b.txt", "sizeBytes": 5}])  # partial update
        (row,) = F.list_files(s, run.pk)
        assert F.file_node(row) == node
        assert F.count_files(s, run.pk, pattern="dir/%") == 1
        assert F.list_files(s, run.pk, names=["nope"]) == []
        F.put_content(s, node["md5"], b"hello")
        F.put_content(s, node["md5"], b"hello")  # idempotent
        assert F.get_content(s, node["md5"]) == b"hello" and F.has_content(s, node["md5"])
        with pytest.raises(StoreError, match="does not match"):
            F.put_content(s, node["md5"], b"hellO")
        with pytest.raises(StoreError):
            F.put_contents(s, {F.md5_b64(b"x"): b"y"})
        assert F.put_contents(s, {F.md5_b64(b"x"): b"x", node["md5"]: b"hello"}) == 1


def test_sweeps_and_reports_round_trip(migrated_store):
    sweep = {"__typename": "Sweep", "id": "U3dlZXA6MQ==", "name": "abc123", "displayName": "s",
             "method": "grid", "state": "RUNNING", "description": None, "bestLoss": 0.25,
             "config": "method: grid\nmetric:\n  name: loss\n  goal: minimize\n",
             "createdAt": "2024-01-01T00:00:00", "updatedAt": None, "runCount": 3,
             "runCountExpected": None}
    report = {"id": "VmlldzoxMjM=", "name": "r", "displayName": "Report ✓", "description": "d",
              "user": {"username": "u1", "photoUrl": "http://p", "email": "u@x"},
              "spec": dumps({"blocks": [], "nan": float("nan")}), "updatedAt": "2024-01-02T00:00:00",
              "createdAt": "2024-01-01T00:00:00"}
    with session_scope(migrated_store) as s:
        project, _ = _project_and_run(s)
        (row,) = S.upsert_sweeps(s, project, [sweep])
        assert S.sweep_node(row) == sweep and S.count_sweeps(s, project.pk) == 1
        (rep,) = R.upsert_reports(s, project, [report])
        assert R.report_node(rep, s.get(User, rep.user_pk)) == report
        assert R.list_reports(s, project.pk, name="r") == [rep]


def _artifact(index, aliases, coll="ds"):
    return {"__typename": "Artifact", "id": f"QXJ0aWZhY3Q6{index}",
            "artifactSequence": {"__typename": "ArtifactSequence", "name": coll},
            "versionIndex": index, "artifactType": {"name": "dataset"}, "description": None,
            "metadata": '{"a": 1}', "ttlDurationSeconds": -1, "ttlIsInherited": True,
            "tags": [], "historyStep": None, "state": "COMMITTED", "size": 10,
            "digest": "d" * 32, "commitHash": None, "fileCount": 2,
            "createdAt": "2024-01-01T00:00:00", "updatedAt": None,
            "aliases": [{"__typename": "ArtifactAlias", "id": f"al{index}{a}", "alias": a} for a in aliases]}


def test_artifacts_round_trip_aliases_move_and_manifest(migrated_store):
    manifest = dumps({"version": 1, "storagePolicy": "wandb-storage-policy-v1",
                      "storagePolicyConfig": {"storageLayout": "V2"},
                      "contents": {"a.txt": {"digest": F.md5_b64(b"a"), "size": 1},
                                   "r": {"digest": "etag", "ref": "s3://b/r", "extra": {"e": 1}}}})
    with session_scope(migrated_store) as s:
        project, run = _project_and_run(s)
        A.upsert_collections(s, project, [{"__typename": "ArtifactSequence", "id": "Q29sbDox",
                                           "name": "ds", "description": "x",
                                           "createdAt": "2024-01-01T00:00:00", "updatedAt": None,
                                           "type": {"name": "dataset"},
                                           "tags": {"edges": [{"node": {"id": "t1", "name": "tag"}}]}}])
        v0, = A.upsert_artifacts(s, project, [_artifact(0, ["v0", "latest"])])
        v1, = A.upsert_artifacts(s, project, [_artifact(1, ["v1", "latest"])])
        assert [a["alias"] for a in A.alias_nodes(s, v0.pk)] == ["v0"]  # latest moved
        assert A.get_version(s, project.pk, "ds:latest").pk == v1.pk
        assert A.get_version(s, project.pk, "ds:v0").pk == v0.pk
        assert A.get_version(s, project.pk, "ds").pk == v1.pk
        assert A.get_version(s, project.pk, "ds:nope") is None
        coll = s.get(ArtifactCollection, v1.collection_pk)
        type_row = s.get(ArtifactType, coll.type_pk)
        node = A.artifact_node(v1, coll, type_row, A.alias_nodes(s, v1.pk))
        want = _artifact(1, ["v1", "latest"])
        for key in want:
            if key not in ("aliases", "artifactSequence"):
                assert node[key] == want[key], key
        assert [a["alias"] for a in node["aliases"]] == ["v1", "latest"]
        assert A.collection_node(coll, type_row)["tags"]["edges"][0]["node"]["name"] == "tag"
        A.put_manifest(s, v1, manifest)
        assert A.manifest_text(v1) == manifest
        assert [e.path for e in A.list_entries(s, v1.pk, stored_only=True)] == ["a.txt"]
        with pytest.raises(StoreError):
            A.put_manifest(s, v1, '{"version": 2}')
        A.upsert_run_artifacts(s, project, run, "output", [_artifact(1, ["v1", "latest"])])
        assert [v.pk for v in A.run_artifact_versions(s, run.pk, "output")] == [v1.pk]
        membership = A.membership_node(v0, coll, type_row, A.alias_nodes(s, v0.pk))
        membership["aliases"] = [{"id": "x", "alias": "best"}]
        A.upsert_membership(s, project, membership)
        assert [a["alias"] for a in A.alias_nodes(s, v0.pk)] == ["best"]
