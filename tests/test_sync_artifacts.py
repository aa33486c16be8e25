"""Artifact versions and collections deleted upstream: a re-sync whose listings were complete
marks them deleted (soft: rows kept), and neither ``wandb_mirror.Api`` nor ``serve`` returns
them any more; an interrupted or partial sync marks nothing.

Real parts only: the upstream is ``wandb-mirror serve`` on 127.0.0.1 over a synth store, the
mirror a SQLite file; faults come from the server's own fault injection.
"""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, update

import wandb_mirror
from wandb_mirror.errors import RemoteError, SyncInterrupted
from wandb_mirror.remote import connect
from wandb_mirror.remote import queries as Q
from wandb_mirror.remote.client import GraphQLClient
from wandb_mirror.server import Faults, make_server
from wandb_mirror.store import artifacts as A
from wandb_mirror.store import open_store, session_scope
from wandb_mirror.store.models import (ArtifactCollection, ArtifactType, ArtifactVersion, Run,
                                       RunArtifact)
from wandb_mirror.store.runs import get_project

from .api_world import mirror_settings
from .store_snapshot import same_project
from .test_sync import KEY, PATH, make_upstream, sync

KEPT, DROPPED = "mnist-train", "resnet"  # the synth store's two collections (two types)


def _delete_upstream(engine):
    """Upstream deletes version v1 of KEPT and the whole collection DROPPED (rows gone, as on
    a real server; aliases, manifest entries and run links cascade)."""
    with session_scope(engine) as s:
        p = get_project(s, "synth", "demo")
        kept = A.get_collection(s, p.pk, KEPT)
        victim = A.get_version_by_index(s, kept.pk, 1)
        victim_id = victim.upstream_id
        s.execute(ArtifactVersion.__table__.delete().where(ArtifactVersion.pk == victim.pk))
        dropped = A.get_collection(s, p.pk, DROPPED)
        dropped_ids = list(s.scalars(select(ArtifactVersion.upstream_id).where(
            ArtifactVersion.collection_pk == dropped.pk)))
        s.execute(ArtifactCollection.__table__.delete().where(ArtifactCollection.pk == dropped.pk))
    return victim_id, dropped_ids


def _deleted_state(db):
    """``{upstream id or collection name: deleted_at}`` of every artifact row in a store."""
    engine = open_store(db)
    try:
        with session_scope(engine) as s:
            out = dict(s.execute(select(ArtifactVersion.upstream_id, ArtifactVersion.deleted_at)).all())
            out.update(s.execute(select(ArtifactCollection.name, ArtifactCollection.deleted_at)).all())
        return out
    finally:
        engine.dispose()


MEMBERSHIP = """
query M($entity: String!, $project: String!, $name: String!) {
  project(name: $project, entityName: $entity) {
    artifactCollectionMembership(name: $name) { id versionIndex }
  }
}"""
BY_ID = "query B($id: ID!) { artifact(id: $id) { id versionIndex } }"
VERSIONS = """
query V($entity: String!, $project: String!, $type: String!, $collection: String!) {
  project(name: $project, entityName: $entity) {
    artifactType(name: $type) {
      artifactCollection(name: $collection) {
        artifacts(first: 100, filters: "{}") { totalCount edges { node { id } } }
      }
    }
  }
}"""
COLLECTIONS = """
query C($entity: String!, $project: String!) {
  project(name: $project, entityName: $entity) {
    artifactCollections(first: 100) { totalCount edges { node { name } } }
    artifactCollection(name: "%s") { name }
  }
}""" % DROPPED
RUN_OUTPUTS = """
query R($entity: String!, $project: String!, $run: String!) {
  project(name: $project, entityName: $entity) {
    run(name: $run) { outputArtifacts(first: 100) { edges { node { id } } } }
  }
}"""


def test_deleted_versions_and_collections_are_marked_and_no_longer_returned(tmp_path):
    a = make_upstream(tmp_path / "a.db", runs=4)
    db = tmp_path / "b.db"
    with make_server(a) as server:
        sync(db, server)
        before = _deleted_state(db)
        assert before and all(v is None for v in before.values())
        victim, dropped = _delete_upstream(a)
        # an incremental re-sync is enough: the version count of KEPT no longer matches
        report = sync(db, server).reports[0]
    assert report.artifacts_deleted == 1 + len(dropped), report.summary()
    after = _deleted_state(db)
    assert set(after) == set(before)  # nothing destroyed
    marked = {k for k, v in after.items() if v is not None}
    assert marked == {victim, DROPPED, *dropped}
    b = open_store(db)
    same_project(a, b, "synth", "demo")  # what is still listed equals upstream

    with session_scope(b) as s:
        p = get_project(s, "synth", "demo")
        kept = A.get_collection(s, p.pk, KEPT)
        kept_type = s.get(ArtifactCollection, kept.pk).type_pk
        producer = s.scalar(select(Run.run_id).join(
            RunArtifact, RunArtifact.run_pk == Run.pk).join(
            ArtifactVersion, ArtifactVersion.pk == RunArtifact.version_pk).where(
            ArtifactVersion.upstream_id == victim, RunArtifact.direction == "output"))
        type_name = s.get(ArtifactType, kept_type).name

    # the read API, offline over the mirror
    api = wandb_mirror.Api(settings=mirror_settings(db, "http://127.0.0.1:9"), db=b,
                           offline=True, max_age=None)
    with pytest.raises(ValueError, match="not found"):
        api.artifact(f"{PATH}/{KEPT}:v1")
    assert not api.artifact_exists(f"{PATH}/{KEPT}:v1")
    assert api.artifact(f"{PATH}/{KEPT}:v0").id != victim
    assert [v.version for v in api.artifacts(type_name, f"{PATH}/{KEPT}")] == ["v2"] + ["v0"]
    assert victim not in {x.id for x in api.run(f"{PATH}/{producer}").logged_artifacts()}
    assert DROPPED not in {c.name for t in api.artifact_types(PATH) for c in t.collections()}
    assert not api.artifact_collection_exists(f"{PATH}/{DROPPED}", "model")
    with pytest.raises(ValueError):
        api.artifact(f"{PATH}/{DROPPED}:latest")

    # serve over the mirror answers the same
    with make_server(b) as mirror:
        client = connect(mirror.url, KEY, max_retries=0)
        ent = {"entity": "synth", "project": "demo"}
        got = client.execute(MEMBERSHIP, {**ent, "name": f"{KEPT}:v1"})
        assert got["project"]["artifactCollectionMembership"] is None
        assert client.execute(MEMBERSHIP, {**ent, "name": f"{KEPT}:v0"})[
            "project"]["artifactCollectionMembership"]["versionIndex"] == 0
        assert client.execute(BY_ID, {"id": victim})["artifact"] is None
        assert client.execute(BY_ID, {"id": dropped[0]})["artifact"] is None
        conn = client.execute(VERSIONS, {**ent, "type": type_name, "collection": KEPT})[
            "project"]["artifactType"]["artifactCollection"]["artifacts"]
        assert conn["totalCount"] == 2 and victim not in {e["node"]["id"] for e in conn["edges"]}
        cols = client.execute(COLLECTIONS, ent)["project"]
        assert [e["node"]["name"] for e in cols["artifactCollections"]["edges"]] == [KEPT]
        assert cols["artifactCollection"] is None
        outs = client.execute(RUN_OUTPUTS, {**ent, "run": producer})["project"]["run"]
        assert victim not in {e["node"]["id"] for e in outs["outputArtifacts"]["edges"]}


def test_a_version_listed_again_is_revived(tmp_path):
    a = make_upstream(tmp_path / "a.db", runs=3)
    db = tmp_path / "b.db"
    with make_server(a) as server:
        sync(db, server)
        with session_scope(a) as s:  # upstream soft-deletes v1 (e.g. a mirror upstream)
            s.execute(update(ArtifactVersion).where(ArtifactVersion.version_index == 1)
                      .values(deleted_at="2030-01-01T00:00:00Z"))
        sync(db, server)
        assert sum(v is not None for v in _deleted_state(db).values()) == 2  # v1 of each
        with session_scope(a) as s:
            s.execute(update(ArtifactVersion).values(deleted_at=None))
        sync(db, server)
    assert all(v is None for v in _deleted_state(db).values())
    same_project(a, open_store(db), "synth", "demo")


def _fail_sync(db, server, operation, *, ok_first=0):
    """A sync whose ``operation`` requests fail (after ``ok_first`` answered) with no retry."""
    server.faults = Faults(operations=[operation], p_5xx=1.0, script=["ok"] * ok_first)
    try:
        with pytest.raises(RemoteError):
            sync(db, server, client=connect(server.url, KEY, max_retries=0))
    finally:
        server.faults = None


def test_a_sync_failing_in_the_artifact_listings_marks_nothing(tmp_path):
    a = make_upstream(tmp_path / "a.db", runs=3)
    db = tmp_path / "b.db"
    with make_server(a) as server:
        sync(db, server)
        victim, dropped = _delete_upstream(a)
        # the versions listing of KEPT (the first type's collection) fails
        _fail_sync(db, server, "MirrorArtifactVersions")
        assert all(v is None for v in _deleted_state(db).values())
        # the first type's collections are listed (KEPT's versions too, completely: its v1 may
        # be marked), the second type's listing fails: DROPPED was never seen, it must stay
        _fail_sync(db, server, "MirrorArtifactCollections", ok_first=1)
        state = _deleted_state(db)
        assert all(state[k] is None for k in (DROPPED, *dropped))
        assert {k for k, v in state.items() if v is not None} <= {victim}
        sync(db, server)  # complete again: now everything gone upstream is marked
    assert {k for k, v in _deleted_state(db).items() if v is not None} == {
        victim, DROPPED, *dropped}
    same_project(a, open_store(db), "synth", "demo")


def test_a_sync_stopped_during_the_artifact_listings_marks_nothing(tmp_path):
    a = make_upstream(tmp_path / "a.db", runs=3)
    db = tmp_path / "b.db"
    stop = threading.Event()

    class StopOnVersions(GraphQLClient):
        """A real client that requests a stop once the first versions page has arrived."""

        def execute(self, query, variables=None):
            data = super().execute(query, variables)
            if "MirrorArtifactVersions" in query:
                stop.set()
            return data

    with make_server(a) as server:
        sync(db, server)
        _delete_upstream(a)
        client = StopOnVersions(connect(server.url, KEY).transport)
        with pytest.raises(SyncInterrupted):
            sync(db, server, client=client, stop=stop)
        assert all(v is None for v in _deleted_state(db).values())


def test_a_listing_is_complete_only_when_the_server_said_so(upstream_store):
    """A null object on the path (here: a type the server does not know) yields no nodes
    and leaves the listing incomplete, where the old paging would have looked empty."""
    _, server = upstream_store
    client = connect(server.url, KEY, max_retries=0)
    path = ("project", "artifactType", "artifactCollections")
    base = {"entity": "synth", "project": "demo"}
    known = client.pages(Q.ARTIFACT_COLLECTIONS, {**base, "type": "dataset"}, path, first=1)
    assert sum(len(n) for _, n in known) >= 1 and known.complete
    unknown = client.pages(Q.ARTIFACT_COLLECTIONS, {**base, "type": "nope"}, path, first=1)
    assert [n for _, n in unknown] == [[]] and not unknown.complete


@pytest.fixture(scope="module")
def upstream_store(tmp_path_factory):
    engine = make_upstream(tmp_path_factory.mktemp("up") / "a.db", runs=3)
    server = make_server(engine).start()
    try:
        yield engine, server
    finally:
        server.stop()
        engine.dispose()
