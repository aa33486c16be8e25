"""Query engine benchmark: a 3-clause filter + summary-metric order on a 10k-run project.

Usage:
    .venv/bin/python bench/query_bench.py [--runs 10000] [--repeat 9] [--store PATH]
                                          [--proposed-indexes] [--proposed-pragmas]

Builds (or reuses, when ``--store`` names an existing file built with the same parameters) a
project of ``--runs`` runs with 40 config and 60 summary keys through ``store.runs.upsert_runs``
(so the ``run_values`` index is the real one), then times, median of ``--repeat`` runs:

- the compiled filter/order (``runs_statement``) fetching run pks: first page (50) and all;
- ``first_run_pks``: the first page read along the value index (what ``Api.runs`` does);
- ``select_runs`` returning ORM ``Run`` objects: first page and all;
- the floor: a hand-written SQL query (joins on ``run_values``) returning the same pks.

Both wall-clock and CPU (process) milliseconds are printed: on a shared machine the wall time
mostly measures the neighbours. ``--proposed-indexes`` first adds the covering indexes of
:data:`PROPOSED_INDEXES` to the bench store (not part of the store schema; see
``bench/RESULTS.md``), so both variants can be measured on the same data;
``--proposed-pragmas`` sets :data:`PROPOSED_PRAGMAS` on every connection of the bench engine.

Targets: first page < 20 ms, all matches < 100 ms. Prints a table; asserts nothing about time
(only that ours and the floor return the same runs in the same order).
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import timeit
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from wandb_mirror.query import first_run_pks, runs_statement, select_runs  # noqa: E402
from wandb_mirror.store import open_store  # noqa: E402
from wandb_mirror.store.models import Run  # noqa: E402
from wandb_mirror.store.runs import upsert_project, upsert_runs  # noqa: E402

FILTER = {
    "state": "finished",
    "config.lr": {"$lt": 0.01},
    "summary_metrics.acc": {"$gte": 0.5},
}
ORDER = "+summary_metrics.loss"
PAGE = 50
STATES = ["finished"] * 6 + ["crashed", "failed", "running", "killed"]

PROPOSED_INDEXES = (
    # Leaf subqueries ``SELECT run_pk ... WHERE root, path, kind, num <op> ?`` become index-only.
    "CREATE INDEX IF NOT EXISTS ix_run_values_root_path_kind_num_run_pk "
    "ON run_values (root, path, kind, num, run_pk)",
    # Order-by lookups ``(run_pk, root, path, elem) -> kind, num, txt`` become index-only.
    "CREATE INDEX IF NOT EXISTS ix_run_values_run_pk_root_path_elem_kind_num_txt "
    "ON run_values (run_pk, root, path, elem, kind, num, txt)",
)

PROPOSED_PRAGMAS = (
    "PRAGMA mmap_size = 1073741824",  # read pages through mmap instead of pread() copies
    "PRAGMA cache_size = -131072",    # 128 MiB page cache instead of the 2 MiB default
)

# Missing and NaN losses (num NULL) sort last, as the engine orders them since NaN ranks as
# missing.
FLOOR_SQL = """
SELECT r.pk FROM runs r
JOIN run_values c ON c.run_pk = r.pk AND c.root = 0 AND c.path = 'lr' AND c.kind = 2
                 AND c.num < 0.01
JOIN run_values a ON a.run_pk = r.pk AND a.root = 1 AND a.path = 'acc' AND a.kind = 2
                 AND a.num >= 0.5
LEFT JOIN run_values o ON o.run_pk = r.pk AND o.root = 1 AND o.path = 'loss' AND o.elem = 0
WHERE r.project_pk = :project AND r.state = 'finished' AND r.deleted_at IS NULL
ORDER BY o.num IS NULL, o.num, r.created_ts IS NULL, r.created_ts, r.pk
"""


def run_nodes(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """Deterministic W&B-shaped run nodes: 40 config keys, 60 summary keys."""
    rng = random.Random(seed)
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    nodes = []
    for i in range(n):
        config: dict[str, Any] = {
            "lr": 10 ** rng.uniform(-4, -1),
            "batch_size": rng.choice([16, 32, 64, 128]),
            "optimizer": rng.choice(["adam", "sgd", "adamw"]),
            "model": {"layers": rng.randint(2, 12), "width": rng.choice([128, 256, 512])},
            "dropout": rng.choice([0.0, 0.1, 0.2, None]),
            "augment": rng.random() < 0.5,
        }
        for k in range(len(config), 40):
            config[f"p{k}"] = rng.choice([rng.random(), rng.randint(0, 100), f"v{k % 7}"])
        loss = rng.random() * 3
        summary: dict[str, Any] = {
            "loss": float("nan") if rng.random() < 0.01 else loss,
            "acc": rng.random(),
            "_step": rng.randint(100, 10_000),
            "_runtime": rng.uniform(10, 10_000),
        }
        for k in range(len(summary), 60):
            summary[f"m{k}"] = rng.gauss(0, 1)
        created = t0 + timedelta(seconds=i * 37 + rng.randint(0, 30))
        nodes.append({
            "name": f"run{i:05d}",
            "displayName": f"run-{i}",
            "state": rng.choice(STATES),
            "tags": rng.sample(["baseline", "ablation", "prod", "dev"], rng.randint(0, 2)),
            "createdAt": created.strftime("%Y-%m-%dT%H:%M:%S"),
            "heartbeatAt": (created + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "config": json.dumps({k: {"value": v} for k, v in config.items()}),
            "summaryMetrics": json.dumps(summary, allow_nan=True),
            "user": {"username": "bench"},
        })
    return nodes


def build(path: Path, n: int, proposed_indexes: bool) -> tuple[Any, int]:
    engine = open_store(path)
    with Session(engine) as s:
        proj = upsert_project(s, "bench", f"query-{n}")
        have = s.scalar(select(text("count(*)")).select_from(Run).where(Run.project_pk == proj.pk))
        if have != n:
            t = time.perf_counter()
            nodes = run_nodes(n)
            for start in range(0, n, 500):
                upsert_runs(s, proj, nodes[start:start + 500])
            s.commit()
            print(f"built {n} runs in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        pk = proj.pk
        s.commit()
    with engine.connect() as conn:
        if proposed_indexes:
            for ddl in PROPOSED_INDEXES:
                conn.execute(text(ddl))
        conn.execute(text("ANALYZE"))
        conn.commit()
    return engine, pk


def median_ms(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(median wall ms, median CPU ms, last result)."""
    out = fn()  # warm-up (page cache, statement cache)
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return statistics.median(wall), statistics.median(cpu), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--store", type=Path, default=None,
                    help="store file to build or reuse (default: a temporary file)")
    ap.add_argument("--proposed-pragmas", action="store_true",
                    help="set the connection pragmas proposed for store.engine before timing")
    ap.add_argument("--proposed-indexes", action="store_true",
                    help="add the covering indexes proposed for the store before timing")
    args = ap.parse_args(argv)
    tmp = None
    if args.store is None:
        tmp = tempfile.TemporaryDirectory()
        args.store = Path(tmp.name) / "bench.db"
    engine, project = build(args.store, args.runs, args.proposed_indexes)
    if args.proposed_pragmas:
        engine.dispose()

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            for pragma in PROPOSED_PRAGMAS:
                dbapi_conn.execute(pragma)

    def ours(limit: int | None) -> Callable[[], list[int]]:
        def go() -> list[int]:
            stmt = runs_statement(project, FILTER, ORDER, limit=limit)
            with engine.connect() as conn:
                return [r.pk for r in conn.execute(stmt.with_only_columns(Run.pk))]
        return go

    def ours_orm(limit: int | None) -> Callable[[], list[int]]:
        def go() -> list[int]:
            with Session(engine) as s:
                return [r.pk for r in select_runs(s, project, FILTER, ORDER, limit=limit)]
        return go

    def floor(limit: int | None) -> Callable[[], list[int]]:
        sql = text(FLOOR_SQL + (f" LIMIT {limit}" if limit else ""))

        def go() -> list[int]:
            with engine.connect() as conn:
                return [r[0] for r in conn.execute(sql, {"project": project})]
        return go

    def first(limit: int | None) -> Callable[[], list[int]]:
        def go() -> list[int]:
            with engine.connect() as conn:
                return first_run_pks(conn, project, FILTER, ORDER, limit=limit or 0)
        return go

    rows = []
    results: dict[str, list[int]] = {}
    for label, limit in (("first page (50)", PAGE), ("all matches", None)):
        makers = [("query engine, pks", ours), ("select_runs, Run objects", ours_orm),
                  ("hand-written SQL floor", floor)]
        if limit:
            makers.insert(1, ("first_run_pks", first))
        for name, maker in makers:
            wall, cpu, out = median_ms(maker(limit), args.repeat)
            results[f"{label}/{name}"] = out
            rows.append((label, name, len(out), wall, cpu))
    for label in ("first page (50)", "all matches"):
        a = results[f"{label}/query engine, pks"]
        b = results[f"{label}/hand-written SQL floor"]
        assert a == b, f"{label}: engine and floor disagree"
    assert results["first page (50)/first_run_pks"] == results["first page (50)/query engine, pks"]
    print(f"query bench: {args.runs} runs, 40 config + 60 summary keys, filter {json.dumps(FILTER)}"
          f", order {ORDER!r}, median of {args.repeat}, proposed indexes "
          f"{'on' if args.proposed_indexes else 'off'}, proposed pragmas "
          f"{'on' if args.proposed_pragmas else 'off'}")
    calib = min(timeit.repeat("sum(range(1000))", number=200, repeat=5)) / 200 * 1e6
    print(f"machine: sum(range(1000)) takes {calib:.0f} us (a current laptop: ~10 us)")
    print(f"| {'result':<16} | {'query':<26} | {'runs':>5} | {'wall ms':>8} | {'CPU ms':>8} |")
    print(f"|{'-' * 18}|{'-' * 28}|{'-' * 7}|{'-' * 10}|{'-' * 10}|")
    for label, name, n, wall, cpu in rows:
        print(f"| {label:<16} | {name:<26} | {n:>5} | {wall:>8.1f} | {cpu:>8.1f} |")
    engine.dispose()
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
