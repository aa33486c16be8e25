"""append_arrow (the bulk, columnar ingest of parquet exports) stores what append_rows does."""
from __future__ import annotations

import math

import pyarrow as pa
import pytest

from wandb_mirror.store import history as H
from wandb_mirror.store import open_store, session_scope
from wandb_mirror.store.runs import upsert_project, upsert_runs
from wandb_mirror.store.values import dumps


def _rows(n, start=0):
    out = []
    for i in range(start, start + n):
        row = {"_step": i, "loss": 1.0 / (i + 1), "epoch": i // 100, "ok": i % 3 == 0,
               "tag": f"t{i % 5}"}
        if i % 7 == 0:
            row["sparse"] = float("nan") if i % 14 == 0 else 2.5
        if i % 50 == 0:
            row["media"] = {"_type": "histogram", "values": [i, i + 1]}
        out.append(row)
    return out


@pytest.fixture()
def store(tmp_path):
    engine = open_store(tmp_path / "s.db")
    with session_scope(engine) as s:
        p = upsert_project(s, "e", "p")
        a, b = upsert_runs(s, p, [{"name": "rows"}, {"name": "arrow"}])
        pks = a.pk, b.pk
    yield (engine, *pks)
    engine.dispose()


def _source_table(engine, pk_src, rows):  # noqa: D103
    """A table shaped like a wandb-mirror parquet export (JSON columns marked)."""
    with session_scope(engine) as s:
        H.append_rows(s, pk_src, rows)
        return H.to_arrow(s, pk_src)


@pytest.mark.parametrize("prefix", [0, 1000, H.CHUNK_ROWS])
def test_arrow_ingest_equals_row_ingest(tmp_path, prefix):
    engine = open_store(tmp_path / "s.db")
    with session_scope(engine) as s:
        p = upsert_project(s, "e", "p")
        src, by_rows, by_arrow = (r.pk for r in upsert_runs(
            s, p, [{"name": "src"}, {"name": "rows"}, {"name": "arrow"}]))
    total = 2 * H.CHUNK_ROWS + 777
    rows = _rows(total)
    table = _source_table(engine, src, rows)
    with session_scope(engine) as s:
        first = rows[:prefix]
        H.append_rows(s, by_rows, first)
        H.append_rows(s, by_arrow, first)
        # rows through the JSON-shaped path that an export hands back
        want_rows = H.read_rows(s, src)
        H.append_rows(s, by_rows, want_rows)
        added = H.append_arrow(s, by_arrow, table)
    assert added == total - prefix
    with session_scope(engine) as s:
        got, want = H.read_rows(s, by_arrow), H.read_rows(s, by_rows)
        assert dumps(got) == dumps(want)
        assert H.row_count(s, by_arrow) == total
        assert H.last_step(s, by_arrow) == total - 1
        again = H.append_arrow(s, by_arrow, table)  # a re-sync adds nothing
        assert again == 0
    assert math.isnan(got[0]["sparse"])


def test_arrow_ingest_rejects_bad_steps(store):
    engine, pk, _ = store
    with session_scope(engine) as s:
        with pytest.raises(ValueError, match="_step"):
            H.append_arrow(s, pk, pa.table({"loss": [1.0]}))
        with pytest.raises(ValueError, match="repeated"):
            H.append_arrow(s, pk, pa.table({"_step": [1, 1], "loss": [1.0, 2.0]}))
        with pytest.raises(ValueError, match="integral"):
            H.append_arrow(s, pk, pa.table({"_step": [1.5], "loss": [1.0]}))
        assert H.append_arrow(s, pk, pa.table({"_step": [3.0, 1.0], "x": [None, 2]})) == 2
        assert H.read_rows(s, pk) == [{"_step": 1, "x": 2}, {"_step": 3}]
