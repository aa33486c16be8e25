"""The GraphQL surface of ``serve``: protocol quirks, paging, history step semantics, and the
fast executor giving exactly graphql-core's answers."""
from __future__ import annotations

import json

import pytest
import requests
from sqlalchemy.orm import Session

from wandb_mirror.query import select_runs
from wandb_mirror.server.encode import encode_reply
from wandb_mirror.server.executor import Fallback, execute_fast
from wandb_mirror.server.nodes import RequestContext, ServeOptions
from wandb_mirror.server.resolvers import run_dict
from wandb_mirror.server.schema import mirror_schema, prepare
from wandb_mirror.store import history as H
from wandb_mirror.store.runs import get_project, get_run, run_node

KEY = "k" * 40
TIMEOUT = 30


def post(server, query, variables=None, operation_name="", **kw):
    body = {"query": query, "variables": variables or {}, "operationName": operation_name}
    return requests.post(f"{server.url}/graphql", json=body, auth=("api", KEY), timeout=TIMEOUT, **kw)


def data(server, query, variables=None, **kw):
    reply = post(server, query, variables, **kw)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


RUNS_Q = """query Runs($project: String!, $entity: String!, $cursor: String, $perPage: Int = 50,
  $order: String, $filters: JSONString) {
  project(name: $project, entityName: $entity) { internalId runCount(filters: $filters)
    runs(filters: $filters, after: $cursor, first: $perPage, order: $order) {
      edges { node { __typename id name projectId displayName tags config summaryMetrics
        historyKeys user { name username } } cursor }
      pageInfo { endCursor hasNextPage } } } }"""


def test_operation_name_empty_string_and_undeclared_variables(served_synth):
    got = data(served_synth, "query Viewer { viewer { id entity } }",
               {"undeclared": 1, "withRuns": False}, operation_name="")
    assert got["viewer"]["entity"] == "synth" and isinstance(got["viewer"]["id"], str)
    got = data(served_synth, "query Viewer { viewer { id } }", operation_name="Viewer")
    assert got["viewer"]["id"]


def test_unknown_field_fails_validation_with_200(served_synth):
    reply = post(served_synth, "{ viewer { id noSuchField } }")
    assert reply.status_code == 200
    assert "noSuchField" in reply.json()["errors"][0]["message"]


def test_server_info_features_list_and_otel(served_synth):
    assert data(served_synth, "query ServerFeaturesQuery { serverInfo { features { name isEnabled } } }") \
        == {"serverInfo": {"features": []}}
    assert requests.post(f"{served_synth.url}/sdk/otel/v1/metrics", timeout=TIMEOUT).status_code == 404


def test_runs_paging_cursors_ids_and_typename(served_synth, synth_store):
    engine, result = synth_store
    seen, cursor = [], None
    while True:
        page = data(served_synth, RUNS_Q, {"project": "demo", "entity": "synth", "perPage": 11,
                                           "cursor": cursor, "filters": "{}"})["project"]
        assert page["runCount"] == len(result.run_ids)
        edges = page["runs"]["edges"]
        for edge in edges:
            node = edge["node"]
            assert node["__typename"] == "Run" and isinstance(node["projectId"], str)
            assert isinstance(node["config"], str) and isinstance(node["historyKeys"], dict)
            assert '"value"' in node["config"]
            seen.append(node["name"])
        if not page["runs"]["pageInfo"]["hasNextPage"]:
            break
        assert page["runs"]["pageInfo"]["endCursor"] == edges[-1]["cursor"]
        cursor = edges[-1]["cursor"]
    assert seen == result.run_ids  # synth creates runs in created_at order


def test_filters_as_json_string_and_bad_filter_is_a_graphql_error(served_synth):
    got = data(served_synth, RUNS_Q, {"project": "demo", "entity": "synth",
                                      "filters": json.dumps({"state": "running"})})
    assert got["project"]["runCount"] == len(got["project"]["runs"]["edges"]) > 0
    reply = post(served_synth, RUNS_Q, {"project": "demo", "entity": "synth",
                                        "filters": json.dumps({"state": {"$bogus": 1}})})
    body = reply.json()
    assert reply.status_code == 200 and body["errors"] and "$bogus" in body["errors"][0]["message"]


def test_missing_project_and_run_are_null(served_synth):
    got = data(served_synth, 'query { project(name: "nope", entityName: "synth") { id } }')
    assert got == {"project": None}
    got = data(served_synth, 'query { project(name: "demo", entityName: "synth") { run(name: "nope") { id } } }')
    assert got == {"project": {"run": None}}


HIST_Q = """query H($name: String!, $min: Int64, $max: Int64, $samples: Int, $spec: JSONString!) {
  project(name: "demo", entityName: "synth") { run(name: $name) {
    history(minStep: $min, maxStep: $max, samples: $samples)
    sampledHistory(specs: [$spec])
    parquetHistory(liveKeys: ["_step"]) { parquetUrls liveData } } } }"""


def test_history_max_exclusive_sampled_history_max_inclusive(served_synth, synth_store):
    engine, result = synth_store
    with Session(engine) as session:
        run = get_run(session, get_project(session, "synth", "demo").pk, result.run_ids[2])
        steps = [r["_step"] for r in H.read_rows(session, run.pk)]
    lo, hi = steps[3], steps[13]
    spec = json.dumps({"keys": ["_step", "loss"], "minStep": lo, "maxStep": hi, "samples": 1000})
    got = data(served_synth, HIST_Q, {"name": result.run_ids[2], "min": lo, "max": hi,
                                      "samples": 1000, "spec": spec})["project"]["run"]
    rows = [json.loads(r) for r in got["history"]]
    assert [r["_step"] for r in rows] == steps[3:13]            # maxStep exclusive
    assert [r["_step"] for r in got["sampledHistory"][0]] == steps[3:14]  # maxStep inclusive
    assert all(set(r) == {"_step", "loss"} for r in got["sampledHistory"][0])
    assert got["parquetHistory"] == {"parquetUrls": [], "liveData": []}


def test_sampled_history_downsamples_keeping_first_and_last(served_synth, synth_store):
    _, result = synth_store
    spec = json.dumps({"keys": ["_step", "acc"], "samples": 7})
    got = data(served_synth, HIST_Q, {"name": result.run_ids[0], "spec": spec})
    rows = got["project"]["run"]["sampledHistory"][0]
    full = data(served_synth, HIST_Q, {"name": result.run_ids[0], "samples": 100000,
                                       "spec": json.dumps({"keys": ["_step", "acc"], "samples": 10**6})})
    all_rows = full["project"]["run"]["sampledHistory"][0]
    assert len(rows) == 7 and rows[0] == all_rows[0] and rows[-1] == all_rows[-1]


# ----------------------------------------------------------------------------- fast executor

DOCS = [
    (RUNS_Q, {"project": "demo", "entity": "synth", "perPage": 5, "order": "-summary_metrics.acc",
              "filters": json.dumps({"state": "finished"})}),
    ("""query A($entity: String!, $project: String!, $name: String!, $includeAliases: Boolean = false) {
      project(name: $project, entityName: $entity) { artifactCollectionMembership(name: $name) {
        __typename id versionIndex aliases { __typename id alias }
        artifactCollection { __typename name project { id internalId name entity { name } } }
        artifact { __typename id artifactSequence { __typename name } versionIndex
          artifactType { name } metadata ttlDurationSeconds tags { __typename id name } state size
          digest fileCount createdAt aliases @include(if: $includeAliases) { alias
            artifactCollection { __typename name } }
          currentManifest { file { directUrl } } files(first: 2) { totalCount edges { node {
            __typename id name: displayName sizeBytes md5 directUrl } } pageInfo { hasNextPage } } } } } }""",
     {"entity": "synth", "project": "demo", "name": "mnist-train:latest", "includeAliases": True}),
    ("""{ project(name: "demo", entityName: "synth") { totalSweeps
         sweeps(first: 5) { edges { node { __typename id name config bestLoss runCount } } }
         allViews(first: 5) { edges { node { id name spec user { username } } } }
         artifactTypes { edges { node { __typename name
           artifactCollections { totalCount edges { node { __typename name
             ... on ArtifactSequence { type: defaultArtifactType { name } }
             tags { edges { node { name } } }
             artifacts(first: 2) { totalCount edges { version node { id versionIndex } } } } } } } } } } }""",
     {}),
    ("""{ models(entityName: "synth") { pageInfo { __typename hasNextPage endCursor }
         edges { node { __typename id name entityName createdAt isBenchmark user { id } } } } }""", {}),
]


@pytest.mark.parametrize("query,variables", DOCS)
def test_fast_executor_equals_graphql_core(synth_store, query, variables):
    from graphql import execute

    engine, _ = synth_store
    prepared = prepare(query)
    assert not prepared.errors, prepared.errors
    opts = ServeOptions(secret=b"s")
    with Session(engine) as session:
        fast = execute_fast(mirror_schema(), prepared.document, None, variables,
                            RequestContext(session=session, base_url="http://h", options=opts))
        slow = execute(mirror_schema(), prepared.document, variable_values=variables,
                       context_value=RequestContext(session=session, base_url="http://h", options=opts))
    assert not slow.errors, slow.errors
    # the fast path writes JSON text itself: byte for byte what encoding graphql-core's answer
    # gives (same key order, escapes, number spellings)
    assert encode_reply({"data": fast}) == encode_reply({"data": slow.data})


def test_fast_executor_falls_back_on_resolver_errors(synth_store):
    engine, _ = synth_store
    prepared = prepare(RUNS_Q)
    with Session(engine) as session, pytest.raises(Fallback):
        execute_fast(mirror_schema(), prepared.document, None,
                     {"project": "demo", "entity": "synth", "filters": '{"$nope": 1}'},
                     RequestContext(session=session, base_url="http://h",
                                    options=ServeOptions(secret=b"s")))


def test_run_dict_agrees_with_store_run_node(synth_store):
    engine, result = synth_store
    with Session(engine) as session:
        project = get_project(session, "synth", "demo")
        ctx = RequestContext(session=session, base_url="http://h", options=ServeOptions(secret=b"s"))
        for run_id in result.run_ids[:10]:
            run = get_run(session, project.pk, run_id)
            fast = run_dict(ctx, run, {})
            ref = run_node(run, None, full=True)
            for key in ref:
                if key not in ("user", "historyKeys"):
                    assert fast[key] == ref[key], key


def test_caches_follow_store_writes(tmp_path, serve):
    """Run lists and run nodes are cached per store generation: a commit invalidates them."""
    from wandb_mirror import synth
    from wandb_mirror.store import open_store
    from wandb_mirror.store.engine import session_scope
    from wandb_mirror.store.runs import upsert_runs

    engine = open_store(tmp_path / "s.db")
    result = synth.generate(engine, runs=5, history_steps=2, system_events=0, sweeps=0,
                            artifact_collections=0, reports=0)
    server = serve(engine)
    variables = {"project": "demo", "entity": "synth", "filters": "{}"}
    before = data(server, RUNS_Q, variables)["project"]
    assert before["runCount"] == 5
    with session_scope(engine) as session:
        project = get_project(session, "synth", "demo")
        upsert_runs(session, project, [{"name": "newrun01", "createdAt": "2030-01-01T00:00:00",
                                        "displayName": "late"}])
        run = get_run(session, project.pk, result.run_ids[0])
        upsert_runs(session, project, [{"name": run.run_id, "displayName": "renamed"}])
    after = data(server, RUNS_Q, variables)["project"]
    assert after["runCount"] == 6
    names = {e["node"]["name"]: e["node"]["displayName"] for e in after["runs"]["edges"]}
    assert names["newrun01"] == "late" and names[result.run_ids[0]] == "renamed"


def test_sweep_runs_connection_with_extra_filters(served_synth, synth_store):
    engine, result = synth_store
    q = """query($s: String!, $f: JSONString) { project(name: "demo", entityName: "synth") {
             sweep(sweepName: $s) { runCount runs(first: 100, filters: $f) { edges { node { name state } } } } } }"""
    sweep = data(served_synth, q, {"s": result.sweep_names[0]})["project"]["sweep"]
    assert len(sweep["runs"]["edges"]) == sweep["runCount"] > 0
    finished = data(served_synth, q, {"s": result.sweep_names[0], "f": '{"state": "finished"}'})
    edges = finished["project"]["sweep"]["runs"]["edges"]
    assert all(e["node"]["state"] == "finished" for e in edges) and len(edges) < sweep["runCount"]


def test_repeated_documents_follow_their_variables(served_synth, synth_store):
    """Plans are shared by the requests of one document; arguments and directives are not."""
    engine, _ = synth_store
    for per_page, order in ((2, "+created_at"), (3, "-created_at"), (2, "-created_at")):
        got = data(served_synth, RUNS_Q, {"project": "demo", "entity": "synth",
                                          "perPage": per_page, "order": order})
        names = [e["node"]["name"] for e in got["project"]["runs"]["edges"]]
        with Session(engine) as s:
            project = get_project(s, "synth", "demo")
            want = [r.run_id for r in select_runs(s, project.pk, None, order, limit=per_page)]
        assert names == want
    query = """query Q($with: Boolean!) { project(name: "demo", entityName: "synth") {
      internalId readOnly @include(if: $with) } }"""
    assert "readOnly" in data(served_synth, query, {"with": True})["project"]
    assert "readOnly" not in data(served_synth, query, {"with": False})["project"]
    assert "readOnly" in data(served_synth, query, {"with": True})["project"]
