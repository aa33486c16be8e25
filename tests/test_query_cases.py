"""Table-driven cases for the query engine: operators, aliases, ordering, malformed input."""
from __future__ import annotations

import math

import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

import wandb_mirror.query as Q
from wandb_mirror.errors import FilterError, StoreError
from wandb_mirror.query import (
    ARTIFACT_VERSION_COLUMNS,
    SWEEP_COLUMNS,
    compile_column_filter,
    compile_order,
    compile_run_filter,
    count_runs,
    select_runs,
)
from wandb_mirror.store.models import (
    ArtifactCollection,
    ArtifactType,
    ArtifactVersion,
    Run,
    Sweep,
)

from .query_fixtures import new_store, seed, store_fingerprint, text_sql_agrees

NAN, INF = float("nan"), float("inf")

DOCS = {
    "ra": {"config": {"lr": 0.1, "opt": {"lr": 0.5, "name": "adam"}, "sched.warmup": 7,
                      "layers": [64, 128], "flag": True, "big": 2**63, "act": "relu", "seed": 1},
           "summary": {"loss": 0.5, "acc": 0.9, "eval": {"f1": 0.7}},
           "state": "finished", "tags": ["prod", "best"], "createdAt": "2023-01-01T00:00:00Z",
           "heartbeatAt": "2023-01-01T01:00:00Z", "displayName": "alpha-1", "group": "g1",
           "jobType": "train", "username": "alice", "sweepName": "sw1", "host": "h1",
           "notes": "first run"},
    "rb": {"config": {"lr": 0.01, "opt": {"lr": 0.05}, "layers": [32], "flag": False,
                      "big": 2**63 + 1, "act": "gelu", "seed": 2},
           "summary": {"loss": NAN, "acc": 0.8},
           "state": "crashed", "tags": ["prod"], "createdAt": "2023-01-01T01:30:00.500+01:00",
           "heartbeatAt": "2023-01-01T02:00:00Z", "displayName": "beta", "group": "g2",
           "jobType": "eval", "username": "bob", "sweepName": "sw1"},
    "rc": {"config": {"lr": 1, "flag": 1, "big": -(2**63) - 5, "act": None, "seed": 1.0},
           "summary": {"loss": INF, "acc": None},
           "state": "running", "tags": [], "createdAt": "2023-01-02T00:00:00.123456",
           "heartbeatAt": None, "displayName": "Alpha-2", "group": None, "jobType": "train"},
    "rd": {"config": {"lr": "0.1", "layers": [[64, 128], 3], "opt": {"name": "sgd"}},
           "summary": {"loss": -INF, "acc": True, "eval": {"f1": None}},
           "state": "finished", "tags": ["dev"], "createdAt": "2022-12-31T23:59:59.999Z",
           "displayName": None, "jobType": None},
    "re": {"summary": {"loss": 2**64, "acc": "n/a"},
           "state": "failed", "tags": ["best", "dev"], "createdAt": "2023-01-03T00:00:00-05:00",
           "displayName": "gamma"},
    "rx": {"config": {"lr": 0.1}, "state": "finished", "tags": ["prod"],
           "createdAt": "2023-01-04T00:00:00Z", "displayName": "deleted"},
}
ALL = "ra rb rc rd re"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    engine = new_store(str(tmp_path_factory.mktemp("query") / "store.db"))
    with Session(engine) as s:
        proj = seed(s, DOCS.values(), ids=DOCS.keys())
        s.execute(update(Run).where(Run.run_id == "rx").values(deleted_at="2023-02-01T00:00:00Z"))
        s.add_all([
            Sweep(project_pk=proj.pk, name="sw1", state="RUNNING", best_loss=0.3,
                  created_at="2023-01-01T00:00:00Z"),
            Sweep(project_pk=proj.pk, name="sw2", state="FINISHED", best_loss=None,
                  created_at="2023-01-02T01:00:00.250+01:00", display_name="second"),
        ])
        atype = ArtifactType(project_pk=proj.pk, name="dataset")
        s.add(atype)
        s.flush()
        coll = ArtifactCollection(project_pk=proj.pk, type_pk=atype.pk, name="ds")
        s.add(coll)
        s.flush()
        s.add_all([
            ArtifactVersion(collection_pk=coll.pk, upstream_id="a0", version_index=0,
                            state="COMMITTED", size=10, created_at="2023-01-01T00:00:00Z"),
            ArtifactVersion(collection_pk=coll.pk, upstream_id="a1", version_index=1,
                            state="PENDING", size=None, created_at="2023-01-05T00:00:00Z"),
        ])
        pk = proj.pk
        s.commit()
    yield engine, pk
    engine.dispose()


def ids(runs) -> list[str]:
    return [r.run_id for r in runs]


# ----------------------------------------------------------------------------- filters

FILTER_CASES = [
    # implicit and explicit equality, type strictness
    ("empty", {}, ALL),
    ("none", None, ALL),
    ("eq_implicit", {"state": "finished"}, "ra rd"),
    ("eq_explicit", {"state": {"$eq": "finished"}}, "ra rd"),
    ("eq_float", {"config.lr": 0.1}, "ra"),
    ("eq_value_alias", {"config.lr.value": 0.1}, "ra"),
    ("eq_int", {"config.lr": 1}, "rc"),
    ("eq_int_float", {"config.lr": 1.0}, "rc"),
    ("bool_not_number", {"config.flag": 1}, "rc"),
    ("bool_true", {"config.flag": True}, "ra"),
    ("bool_false", {"config.flag": False}, "rb"),
    ("int_equals_float", {"config.seed": 1}, "ra rc"),
    ("string_not_number", {"config.lr": "0.1"}, "rd"),
    ("null_or_missing", {"config.act": None}, "rc rd re"),
    ("ne_null", {"config.act": {"$ne": None}}, "ra rb"),
    ("exists_true", {"config.act": {"$exists": True}}, "ra rb rc"),
    ("exists_false", {"config.act": {"$exists": False}}, "rd re"),
    # arrays
    ("array_element", {"config.layers": 64}, "ra"),
    ("array_whole_or_element", {"config.layers": [64, 128]}, "ra rd"),
    ("array_nested_whole", {"config.layers": [[64, 128], 3]}, "rd"),
    ("size_2", {"config.layers": {"$size": 2}}, "ra rd"),
    ("size_1", {"config.layers": {"$size": 1}}, "rb"),
    ("all", {"config.layers": {"$all": [64, 128]}}, "ra"),
    ("all_none", {"config.layers": {"$all": [64, 32]}}, ""),
    ("all_empty", {"config.layers": {"$all": []}}, ""),
    ("gt_any_element", {"config.layers": {"$gt": 100}}, "ra"),
    ("lt_any_element", {"config.layers": {"$lt": 50}}, "rb rd"),
    # nesting, objects, dotted keys
    ("nested", {"config.opt.lr": 0.5}, "ra"),
    ("nested_value_alias", {"config.opt.value.lr": 0.05}, "rb"),
    ("object_eq", {"config.opt": {"lr": 0.05}}, "rb"),
    ("object_eq_key_order", {"config.opt": {"name": "adam", "lr": 0.5}}, "ra"),
    ("dotted_literal_key", {"config.sched.warmup": 7}, "ra"),
    ("in_nested", {"config.opt.name": {"$in": ["adam", "sgd"]}}, "ra rd"),
    ("nin_matches_missing", {"config.opt.name": {"$nin": ["adam"]}}, "rb rc rd re"),
    # ranges and type bracketing
    ("gt_numbers_only", {"config.lr": {"$gt": 0.05}}, "ra rc"),
    ("range_pair", {"config.lr": {"$gte": 0.01, "$lt": 1}}, "ra rb"),
    ("lte", {"config.lr": {"$lte": 1}}, "ra rb rc"),
    ("gt_string", {"config.lr": {"$gt": "0"}}, "rd"),
    ("gt_bool", {"config.flag": {"$gt": False}}, "ra"),
    ("gte_number_skips_bools", {"config.flag": {"$gte": 0}}, "rc"),
    ("in_mixed_types", {"config.lr": {"$in": [0.1, "0.1"]}}, "ra rd"),
    ("in_null_missing", {"config.lr": {"$in": [None]}}, "re"),
    ("nin", {"config.lr": {"$nin": [0.1, 0.01]}}, "rc rd re"),
    ("not_gt", {"config.lr": {"$not": {"$gt": 0.05}}}, "rb rd re"),
    ("in_empty", {"config.lr": {"$in": []}}, ""),
    ("nin_empty", {"config.lr": {"$nin": []}}, ALL),
    # regex
    ("regex", {"config.act": {"$regex": "^r"}}, "ra"),
    ("regex_options_i", {"config.act": {"$regex": "ELU", "$options": "i"}}, "ra rb"),
    ("not_regex", {"config.act": {"$not": {"$regex": "^g"}}}, "ra rc rd re"),
    ("regex_strings_only", {"config.lr": {"$regex": "0"}}, "rd"),
    ("regex_lookahead", {"displayName": {"$regex": "^(?!alpha)"}}, "rb rc re"),
    # integers beyond int64
    ("big_eq", {"config.big": 2**63}, "ra"),
    ("big_eq_plus1", {"config.big": 2**63 + 1}, "rb"),
    ("big_eq_float", {"config.big": float(2**63)}, "ra"),
    ("big_gt", {"config.big": {"$gt": 2**63}}, "rb"),
    ("big_gte", {"config.big": {"$gte": 2**63}}, "ra rb"),
    ("big_lt_negative", {"config.big": {"$lt": -(2**63)}}, "rc"),
    ("big_gt_zero", {"config.big": {"$gt": 0}}, "ra rb"),
    ("big_lt", {"config.big": {"$lt": 2**63 + 1}}, "ra rc"),
    ("big_in", {"config.big": {"$in": [2**63 + 1, 5]}}, "rb"),
    # NaN and infinities
    ("nan_eq", {"summary_metrics.loss": NAN}, "rb"),
    ("nan_ne", {"summary_metrics.loss": {"$ne": NAN}}, "ra rc rd re"),
    ("gt_skips_nan", {"summary_metrics.loss": {"$gt": 0}}, "ra rc re"),
    ("lt_neg_inf", {"summary_metrics.loss": {"$lt": 0}}, "rd"),
    ("nan_never_in_range", {"summary_metrics.loss": {"$gte": NAN}}, ""),
    ("inf_eq", {"summary_metrics.loss": INF}, "rc"),
    ("in_nan_inf", {"summary_metrics.loss": {"$in": [NAN, -INF]}}, "rb rd"),
    ("lte_inf", {"summary_metrics.loss": {"$lte": INF}}, "ra rc rd re"),
    ("summary_null", {"summary_metrics.acc": None}, "rc"),
    ("summary_bool", {"summary_metrics.acc": True}, "rd"),
    ("nested_null", {"summary_metrics.eval.f1": None}, "rb rc rd re"),
    ("nested_exists", {"summary_metrics.eval.f1": {"$exists": True}}, "ra rd"),
    ("gte_null_is_eq_null", {"summary_metrics.acc": {"$gte": None}}, "rc"),
    ("gt_null_nothing", {"summary_metrics.acc": {"$gt": None}}, ""),
    # run columns and aliases
    ("display_name", {"display_name": "beta"}, "rb"),
    ("displayName_regex", {"displayName": {"$regex": "^alpha", "$options": "i"}}, "ra rc"),
    ("displayName_null", {"displayName": None}, "rd"),
    ("name", {"name": "rc"}, "rc"),
    ("tags_has", {"tags": "prod"}, "ra rb"),
    ("tags_in", {"tags": {"$in": ["dev", "nope"]}}, "rd re"),
    ("tags_all", {"tags": {"$all": ["best", "prod"]}}, "ra"),
    ("tags_size_0", {"tags": {"$size": 0}}, "rc"),
    ("tags_ne", {"tags": {"$ne": "prod"}}, "rc rd re"),
    ("tags_whole", {"tags": ["prod", "best"]}, "ra"),
    ("not_tagged_upstream_form", {"$or": [{"tags": None}, {"tags": {"$ne": "best"}}]},
     "rb rc rd"),
    ("group_null", {"group": None}, "rc rd re"),
    ("jobType", {"jobType": "train"}, "ra rc"),
    ("job_type_ne", {"job_type": {"$ne": "train"}}, "rb rd re"),
    ("username", {"username": "alice"}, "ra"),
    ("sweep", {"sweep": "sw1"}, "ra rb"),
    ("host", {"host": "h1"}, "ra"),
    ("notes", {"notes": {"$regex": "first"}}, "ra"),
    ("duration", {"duration": 3600}, "ra"),
    ("duration_gt", {"duration": {"$gt": 5000}}, "rb"),
    # timestamps in any ISO spelling
    ("created_z", {"createdAt": "2023-01-01T00:00:00Z"}, "ra"),
    ("created_offset", {"created_at": "2023-01-01T01:00:00+01:00"}, "ra"),
    ("created_naive", {"createdAt": "2023-01-01T00:00:00"}, "ra"),
    ("created_fraction", {"createdAt": "2023-01-01T00:00:00.000000Z"}, "ra"),
    ("created_gt", {"createdAt": {"$gt": "2023-01-01T00:30:00Z"}}, "rb rc re"),
    ("created_gte_fraction", {"createdAt": {"$gte": "2023-01-01T00:30:00.5Z"}}, "rb rc re"),
    ("created_lt", {"createdAt": {"$lt": "2023-01-01T00:00:00Z"}}, "rd"),
    ("created_window_micro",
     {"createdAt": {"$gte": "2023-01-02T00:00:00.123456Z", "$lt": "2023-01-03T05:00:00Z"}}, "rc"),
    ("created_window_micro_excl",
     {"createdAt": {"$gt": "2023-01-02T00:00:00.123456Z", "$lt": "2023-01-03T05:00:00Z"}}, ""),
    ("created_in", {"createdAt": {"$in": ["2023-01-03T05:00:00Z",
                                          "2022-12-31T23:59:59.999+00:00"]}}, "rd re"),
    ("heartbeat_null", {"heartbeat_at": None}, "rc rd re"),
    ("heartbeat_lte_offset", {"heartbeatAt": {"$lte": "2023-01-01T03:00:00+02:00"}}, "ra"),
    ("updated_present_null", {"updatedAt": {"$exists": True}}, ALL),
    # logic
    ("and", {"$and": [{"state": "finished"}, {"config.lr": {"$lt": 1}}]}, "ra"),
    ("or", {"$or": [{"state": "crashed"}, {"config.lr": 1}]}, "rb rc"),
    ("nor", {"$nor": [{"state": "finished"}, {"tags": "best"}]}, "rb rc"),
    ("implicit_and", {"state": "finished", "tags": "dev"}, "rd"),
    ("nested_logic", {"$or": [{"$and": [{"state": "finished"}, {"$nor": [{"tags": "prod"}]}]},
                              {"name": "re"}]}, "rd re"),
    ("not_of_and", {"config.lr": {"$not": {"$gt": 0, "$lt": 1}}}, "rc rd re"),
]


@pytest.mark.parametrize("flt,expected", [c[1:] for c in FILTER_CASES],
                         ids=[c[0] for c in FILTER_CASES])
def test_filter(store, flt, expected) -> None:
    engine, pk = store
    with Session(engine) as s:
        got = sorted(ids(select_runs(s, pk, flt)))
        assert got == sorted(expected.split())
        assert count_runs(s, pk, flt) == len(got)
        assert len(text_sql_agrees(s, pk, flt)) == len(got)


def test_deleted_runs_hidden_unless_asked(store) -> None:
    engine, pk = store
    with Session(engine) as s:
        assert ids(select_runs(s, pk, {"config.lr": 0.1})) == ["ra"]
        assert ids(select_runs(s, pk, {"config.lr": 0.1}, include_deleted=True)) == ["ra", "rx"]
        assert count_runs(s, pk, include_deleted=True) == 6


def test_connection_returns_rows(store) -> None:
    engine, pk = store
    with engine.connect() as conn:
        rows = select_runs(conn, pk, {"tags": "prod"})
        assert [r.run_id for r in rows] == ["ra", "rb"]


# ----------------------------------------------------------------------------- order

ORDER_CASES = [
    ("default", None, "rd ra rb rc re"),
    ("plus_created_at", "+created_at", "rd ra rb rc re"),
    ("unsigned_is_desc", "created_at", "re rc rb ra rd"),
    ("minus_createdAt", "-createdAt", "re rc rb ra rd"),
    ("summary_asc_nan_last", "+summary_metrics.loss", "rd ra re rc rb"),
    ("summary_desc", "-summary_metrics.loss", "rc re ra rd rb"),
    ("mixed_types_asc", "+summary_metrics.acc", "rb ra re rd rc"),
    ("mixed_types_desc", "-summary_metrics.acc", "rd re ra rb rc"),
    ("missing_last_asc", "+config.opt.lr", "rb ra rd rc re"),
    ("missing_last_desc", "-config.opt.lr", "ra rb rd rc re"),
    ("tie_break_created", "+config.seed.value", "ra rc rb rd re"),
    ("display_name_asc", "+display_name", "rc ra rb re rd"),
    ("display_name_desc", "-displayName", "re rb ra rc rd"),
    ("name_asc", "+name", "ra rb rc rd re"),
    ("name_unsigned", "name", "re rd rc rb ra"),
    ("list_of_keys", ["+state", "-created_at"], "rb re ra rd rc"),
    ("heartbeat_asc", "+heartbeat_at", "ra rb rd rc re"),
    ("heartbeat_desc", "-heartbeat_at", "rb ra rd rc re"),
    ("numbers_then_strings", "+config.lr", "rb ra rc rd re"),
    ("desc_strings_first", "-config.lr", "rd rc ra rb re"),
    ("arrays_by_canonical_json", "+tags", "re rd ra rb rc"),
    ("whitespace_sign", " - summary_metrics.loss ", "rc re ra rd rb"),
    ("empty_list_default", [], "rd ra rb rc re"),
]


@pytest.mark.parametrize("order,expected", [c[1:] for c in ORDER_CASES],
                         ids=[c[0] for c in ORDER_CASES])
def test_order(store, order, expected) -> None:
    engine, pk = store
    with Session(engine) as s:
        assert ids(select_runs(s, pk, None, order)) == expected.split()


def test_paging_and_filtered_order(store) -> None:
    engine, pk = store
    with Session(engine) as s:
        assert ids(select_runs(s, pk, order="+name", limit=2, offset=1)) == ["rb", "rc"]
        assert ids(select_runs(s, pk, {"state": "finished"}, "-summary_metrics.loss")) == \
            ["ra", "rd"]


# ----------------------------------------------------------------------------- errors

DEEP: dict = {"state": "x"}
for _ in range(25):
    DEEP = {"$and": [DEEP]}

ERROR_CASES = [
    ("unknown_operator", {"config.lr": {"$foo": 1}}, '$["config.lr"].$foo'),
    ("path_in_and", {"$and": [{"state": "x"}, {"config.lr": {"$gt": [1]}}]},
     '$.$and[1]["config.lr"].$gt'),
    ("non_dict", ["state"], "$"),
    ("json_string", "{}", "$"),
    ("unknown_key", {"bogus": 1}, '$["bogus"]'),
    ("summary_dot", {"summary.loss": 1}, '$["summary.loss"]'),
    ("invalid_regex", {"config.lr": {"$regex": "("}}, '$["config.lr"].$regex'),
    ("regex_not_string", {"config.lr": {"$regex": 5}}, '$["config.lr"].$regex'),
    ("bad_option", {"config.lr": {"$regex": "a", "$options": "q"}}, '$["config.lr"].$options'),
    ("options_alone", {"config.lr": {"$options": "i"}}, '$["config.lr"].$options'),
    ("too_deep", DEEP, "$" + ".$and[0]" * 21),
    ("huge_in", {"tags": {"$in": list(range(10_001))}}, '$["tags"].$in'),
    ("in_not_array", {"tags": {"$in": "prod"}}, '$["tags"].$in'),
    ("empty_and", {"$and": []}, "$.$and"),
    ("or_not_array", {"$or": {"state": "x"}}, "$.$or"),
    ("top_level_not", {"$not": {"state": "x"}}, "$.$not"),
    ("not_literal", {"config.lr": {"$not": 5}}, '$["config.lr"].$not'),
    ("bad_timestamp", {"createdAt": "yesterday"}, '$["createdAt"]'),
    ("epoch_timestamp", {"createdAt": {"$gt": 1672531200}}, '$["createdAt"].$gt'),
    ("size_negative", {"tags": {"$size": -1}}, '$["tags"].$size'),
    ("size_string", {"tags": {"$size": "2"}}, '$["tags"].$size'),
    ("exists_string", {"config.lr": {"$exists": "yes"}}, '$["config.lr"].$exists'),
    ("empty_segment", {"config.": 1}, '$["config."]'),
    ("mixed_operator_object", {"config.lr": {"$gt": 1, "x": 2}}, '$["config.lr"]["x"]'),
    ("unknown_top_level", {"$where": "1"}, "$.$where"),
    ("all_not_array", {"config.lr": {"$all": 3}}, '$["config.lr"].$all'),
    ("non_string_key", {1: 2}, "$[1]"),
    ("too_many_clauses", {"$or": [{"name": str(i)} for i in range(600)]}, '$.$or[500]["name"]'),
    ("non_dict_in_and", {"$and": [{"state": "a"}, "x"]}, "$.$and[1]"),
    ("lone_surrogate", {"state": "\ud800"}, '$["state"]'),
    ("range_object", {"config.lr": {"$gt": {"a": 1}}}, '$["config.lr"].$gt'),
    ("operator_in_in", {"config.lr": {"$in": [{"$gt": 1}]}}, '$["config.lr"].$in[0]'),
    ("unsupported_type", {"config.lr": {"1", "2"}}, '$["config.lr"]'),
    ("bare_config", {"config": {"lr": 1}}, '$["config"]'),
]


@pytest.mark.parametrize("flt,path", [c[1:] for c in ERROR_CASES],
                         ids=[c[0] for c in ERROR_CASES])
def test_malformed_filter(store, flt, path) -> None:
    engine, pk = store
    before = store_fingerprint(engine)
    with pytest.raises(FilterError) as info:
        with Session(engine) as s:
            select_runs(s, pk, flt)
    assert info.value.path == path, str(info.value)
    assert f"(at {path})" in str(info.value)
    with pytest.raises(FilterError):
        with Session(engine) as s:
            count_runs(s, pk, flt)
    assert store_fingerprint(engine) == before


def test_unknown_key_lists_valid_keys() -> None:
    with pytest.raises(FilterError) as info:
        compile_run_filter({"Name": "x"})
    for key in ("summary_metrics.<key>", "display_name", "createdAt", "created_at", "jobType"):
        assert key in str(info.value)
    with pytest.raises(FilterError, match="did you mean summary_metrics.loss"):
        compile_run_filter({"summary.loss": 1})


@pytest.mark.parametrize("order,path", [
    ("+bogus", "$order"), (["+created_at", 5], "$order[1]"), (5, "$order"), ("-", "$order"),
    (["+created_at", "+summary.loss"], "$order[1]"), (["a"] * 9, "$order"),
])
def test_malformed_order(order, path) -> None:
    with pytest.raises(FilterError) as info:
        compile_order(order)
    assert info.value.path == path


@pytest.mark.parametrize("kw", [{"limit": -1}, {"offset": "2"}, {"limit": True},
                                {"limit": 2**70}])
def test_bad_paging(store, kw) -> None:
    engine, pk = store
    with Session(engine) as s, pytest.raises(FilterError):
        select_runs(s, pk, **kw)


def test_values_and_keys_are_bound_parameters() -> None:
    evil = "x'); DROP TABLE runs; --"
    stmt = select(Run.pk).where(compile_run_filter({f"config.{evil}": evil,
                                                    "state": {"$in": [evil]}}))
    sql = str(stmt.compile())
    assert "DROP" not in sql


def test_database_errors_become_store_errors(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no schema at all
    with Session(engine) as s, pytest.raises(StoreError, match="selecting runs"):
        select_runs(s, 1, {"state": "x"})
    with Session(engine) as s, pytest.raises(StoreError, match="counting runs"):
        count_runs(s, 1, {"state": "x"})


# ----------------------------------------------------------------------------- plain columns

SWEEP_CASES = [
    ({"state": "RUNNING"}, ["sw1"]),
    ({"createdAt": {"$gt": "2023-01-01T12:00:00Z"}}, ["sw2"]),
    ({"created_at": "2023-01-02T00:00:00.25Z"}, ["sw2"]),
    ({"bestLoss": None}, ["sw2"]),
    ({"best_loss": {"$lt": 1}}, ["sw1"]),
    ({"name": {"$regex": "2$"}}, ["sw2"]),
    ({"state": {"$ne": 1}}, ["sw1", "sw2"]),
    ({"state": 1}, []),
    ({"displayName": {"$exists": False}}, ["sw1"]),
    ({"$or": [{"state": "FINISHED"}, {"bestLoss": {"$gte": 0.3}}]}, ["sw1", "sw2"]),
    ({"name": {"$in": ["sw1", None]}}, ["sw1"]),
    ({"bestLoss": {"$nin": [0.3]}}, ["sw2"]),
]


@pytest.mark.parametrize("flt,expected", SWEEP_CASES)
def test_sweep_filters(store, flt, expected) -> None:
    engine, pk = store
    with Session(engine) as s:
        got = s.scalars(select(Sweep.name).where(
            Sweep.project_pk == pk, compile_column_filter(flt, SWEEP_COLUMNS)).order_by(Sweep.name))
        assert list(got) == expected


@pytest.mark.parametrize("flt,expected", [
    ({"state": "COMMITTED"}, [0]),
    ({"versionIndex": {"$gte": 1}}, [1]),
    ({"size": None}, [1]),
    ({"created_at": {"$lt": "2023-01-02T00:00:00+00:00"}}, [0]),
])
def test_artifact_version_filters(store, flt, expected) -> None:
    engine, _ = store
    with Session(engine) as s:
        got = s.scalars(select(ArtifactVersion.version_index).where(
            compile_column_filter(flt, ARTIFACT_VERSION_COLUMNS))
            .order_by(ArtifactVersion.version_index))
        assert list(got) == expected


def test_column_filter_errors() -> None:
    with pytest.raises(FilterError) as info:
        compile_column_filter({"bogus": 1}, SWEEP_COLUMNS)
    assert info.value.path == '$["bogus"]' and "state" in str(info.value)
    with pytest.raises(FilterError):
        compile_column_filter({"createdAt": "soon"}, SWEEP_COLUMNS)


def test_public_names_sorted_and_documented() -> None:
    assert Q.__all__ == sorted(Q.__all__)
    for name in Q.__all__:
        assert getattr(Q, name).__doc__, name


def test_nan_operand_is_not_bound_as_null() -> None:
    # SQLite binds NaN as NULL; the compiler must never bind one.
    stmt = select(Run.pk).where(compile_run_filter({"summary_metrics.x": {"$in": [NAN]}}))
    params = stmt.compile().params
    assert not any(isinstance(v, float) and math.isnan(v) for v in params.values())


def test_limits_are_executable(store) -> None:
    """The largest accepted filters still run (SQLite's expression depth is 1000)."""
    engine, pk = store
    wide = {"$or": [{"name": str(i)} for i in range(499)] + [{"name": "ra"}]}
    deep: dict = {"name": "rb"}
    for _ in range(19):
        deep = {"$and": [deep]}
    big_in = {"config.lr": {"$in": [1000 + i / 7 for i in range(9_999)] + [0.1]}}
    with Session(engine) as s:
        assert ids(select_runs(s, pk, wide)) == ["ra"]
        assert ids(select_runs(s, pk, deep)) == ["rb"]
        assert ids(select_runs(s, pk, big_in)) == ["ra"]
        assert count_runs(s, pk, {"$nor": [wide]}) == 4
