"""Deterministic synthetic W&B-shaped workloads, written into a store through the store modules.

``generate(engine, runs=N, ...)`` creates one project with N runs (nested mixed-type configs
with ``{"value": ...}`` wrappers, summaries with NaN/±inf, tags, states, users, groups), sweeps
with YAML configs and metric goals, per-run history (sparse keys, steps not starting at 0) and
system events, run files with real bytes in the content cache, artifacts with versions, aliases
(``latest``, ``v<N>``) and manifests (one reference entry each), run input/output links and
reports. The same arguments always give the same store content (timestamps included), so tests
compare a served store against what they generated.
"""
from __future__ import annotations

import base64
import json
import math
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from .store import artifacts as store_artifacts
from .store import files as store_files
from .store import reports as store_reports
from .store import runs as store_runs
from .store import sweeps as store_sweeps
from .store.engine import session_scope
from .store import values as store_values
from .store.models import Project, Run, RunFile, RunValue, User
from .store.values import dumps

__all__ = ["SynthResult", "generate", "node_id"]

BASE_TIME = datetime(2024, 3, 1, 8, 0, 0, tzinfo=timezone.utc)
ADJECTIVES = ["eager", "brisk", "calm", "dark", "fine", "golden", "honest", "icy", "jolly", "keen",
              "lively", "misty", "noble", "proud", "quiet", "rosy", "swift", "tidy", "vivid", "wild"]
NOUNS = ["fox", "river", "sun", "pine", "wave", "cloud", "star", "moon", "field", "stone",
         "leaf", "dream", "frost", "haze", "sky", "snow", "water", "wind", "fire", "bird"]
TAGS = ["baseline", "ablation", "prod", "debug", "lr-sweep", "v2", "gpu", "résumé-ü"]
STATES = ["finished"] * 6 + ["failed", "crashed", "killed"]
_ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


def node_id(kind: str, *parts: Any) -> str:
    """A W&B-style opaque node id: base64 of ``"<Kind>:v1:<parts joined by :>"``."""
    raw = ":".join([kind, "v1", *(str(p) for p in parts)])
    return base64.b64encode(raw.encode()).decode("ascii")


def _iso(dt: datetime) -> str:
    """W&B's naive UTC timestamp format (``2023-11-05T17:46:35``)."""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class SynthResult:
    """What :func:`generate` created (ids in creation order)."""

    entity: str
    project: str
    run_ids: list[str] = field(default_factory=list)
    sweep_names: list[str] = field(default_factory=list)
    artifact_names: list[str] = field(default_factory=list)  # "<collection>:v<N>"
    report_ids: list[str] = field(default_factory=list)
    usernames: list[str] = field(default_factory=list)
    history_rows: int = 0
    event_rows: int = 0


def _run_id(rng: random.Random) -> str:
    return "".join(rng.choice(_ID_CHARS) for _ in range(8))


def _config(rng: random.Random, i: int, sweep_params: dict[str, Any] | None) -> dict[str, Any]:
    lr = sweep_params["lr"] if sweep_params else round(10 ** rng.uniform(-5, -1), 8)
    batch = sweep_params["batch_size"] if sweep_params else rng.choice([16, 32, 64, 128])
    cfg: dict[str, Any] = {
        "lr": {"desc": None, "value": lr},
        "batch_size": {"desc": None, "value": batch},
        "epochs": {"value": rng.randint(1, 50)},
        "seed": {"value": i},
        "use_amp": {"value": rng.random() < 0.5},
        "dataset": {"value": rng.choice(["cifar10", "mnist", "imagenet-1k"])},
        "optimizer": {"value": {"name": rng.choice(["adam", "sgd", "adamw"]),
                                "betas": [0.9, 0.999], "eps": 1e-8,
                                "schedule": {"kind": "cosine", "warmup": rng.randint(0, 500)}}},
        "opt.weight_decay": {"value": rng.choice([0.0, 0.01, 0.1])},
        "layers": {"value": [rng.randint(16, 512) for _ in range(rng.randint(1, 4))]},
        "big_int": {"value": 2**62 + i},
        "_wandb": {"value": {"cli_version": "0.31.0", "python_version": "3.11.9",
                             "t": {"1": [1, 5, 55], "2": [1, 5, 53], "4": "3.11.9"},
                             "m": [{"1": "loss", "6": [3]}]}},
    }
    if i % 3 == 0:
        cfg["notes"] = {"value": None}
    if i % 4 == 1:
        cfg["dropout"] = {"value": round(rng.uniform(0, 0.5), 3)}
    if i % 10 == 7:
        cfg["wandb_version"] = 1  # legacy YAML config: unwrapped top-level key
    return cfg


def _history(rng: random.Random, n_steps: int, n_keys: int, start_step: int, t0: float,
             diverged: bool) -> list[dict[str, Any]]:
    keys = ["loss", "acc", "lr"] + [f"metric_{k}" for k in range(max(0, n_keys - 3))]
    keys = keys[:max(1, n_keys)]
    rows = []
    loss = rng.uniform(1.5, 3.0)
    for j in range(n_steps):
        step = start_step + j
        loss *= rng.uniform(0.93, 1.0)
        row: dict[str, Any] = {"_step": step, "_runtime": round(j * 1.5 + rng.random(), 4),
                               "_timestamp": round(t0 + j * 1.5, 3)}
        for k, key in enumerate(keys):
            if k >= 3 and (j % (k % 4 + 1)) != 0:
                continue  # sparse keys: logged every 1..4 steps
            if key == "loss":
                row[key] = loss
            elif key == "acc":
                row[key] = min(1.0, 1.0 - loss / 4 + rng.uniform(-0.01, 0.01))
            elif key == "lr":
                row[key] = 0.001 * math.cos(j / max(1, n_steps))
            else:
                row[key] = round(rng.gauss(0, 1), 6)
        if j % 10 == 0:
            row["epoch"] = j // 10
        if diverged and j == n_steps - 1:
            row["loss"] = float("nan")
        rows.append(row)
    return rows


def _history_keys(rows: list[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        for key, value in row.items():
            typ = "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else "string"
            counts.setdefault(key, {}).setdefault(typ, 0)
            counts[key][typ] += 1
    return {
        "keys": {k: {"typeCounts": [{"type": t, "count": c} for t, c in v.items()]}
                 for k, v in sorted(counts.items())},
        "lastStep": rows[-1]["_step"] if rows else -1,
    }


def _events(rng: random.Random, n: int, t0: float) -> list[dict[str, Any]]:
    return [{"_wandb": True, "_timestamp": round(t0 + 10.0 * j, 3), "_runtime": 10.0 * j,
             "system.cpu": round(rng.uniform(5, 95), 2),
             "system.memory": round(rng.uniform(10, 60), 2),
             "system.gpu.0.gpu": round(rng.uniform(0, 100), 1)} for j in range(n)]


def _summary(rng: random.Random, rows: list[dict[str, Any]], runtime: float, i: int,
             diverged: bool) -> dict[str, Any]:
    last = rows[-1] if rows else {}
    summary: dict[str, Any] = {k: v for k, v in last.items()}
    summary.update({
        "_runtime": runtime,
        "_wandb": {"runtime": int(runtime)},
        "best": {"val_loss": round(rng.uniform(0.1, 1.0), 5), "epoch": rng.randint(0, 9)},
        "hist": {"_type": "histogram", "values": [rng.randint(0, 9) for _ in range(4)],
                 "bins": [0.0, 0.25, 0.5, 0.75, 1.0]},
    })
    if diverged:
        summary["loss"] = float("nan")
    if i % 7 == 3:
        summary["max_grad"] = float("inf")
    if i % 11 == 5:
        summary["min_grad"] = float("-inf")
    if not rows:
        summary.setdefault("loss", round(rng.uniform(0.1, 2.0), 5))
        summary.setdefault("acc", round(rng.uniform(0.1, 0.99), 5))
    return summary


def _sweep_yaml(name: str, metric: str, goal: str) -> str:
    return (f"method: bayes\nname: {name}\nmetric:\n  name: {metric}\n  goal: {goal}\n"
            "parameters:\n  lr:\n    distribution: log_uniform_values\n    min: 0.00001\n"
            "    max: 0.1\n  batch_size:\n    values: [16, 32, 64, 128]\n")


def _files_for_run(rng: random.Random, entity: str, project: str, run_id: str, cfg: dict[str, Any],
                   n: int, updated: str) -> list[tuple[dict[str, Any], bytes]]:
    candidates: list[tuple[str, str, bytes]] = [
        ("config.yaml", "text/yaml",
         "".join(f"{k}:\n  value: {json.dumps(v.get('value') if isinstance(v, dict) else v)}\n"
                 for k, v in cfg.items()).encode()),
        ("wandb-metadata.json", "application/json",
         json.dumps({"os": "Linux", "python": "3.11.9", "host": f"node-{rng.randint(1, 9)}",
                     "program": "train.py", "args": ["--seed", str(rng.randint(0, 99))]}).encode()),
        ("output.log", "text/plain",
         "".join(f"step {k}: loss={rng.random():.4f}\n" for k in range(rng.randint(3, 30))).encode()),
        ("media/images/sample_0.png", "image/png", rng.randbytes(256)),
        ("requirements.txt", "text/plain", b"torch==2.3.0\nnumpy==1.26.4\nwandb==0.31.0\n"),
    ]
    out = []
    for name, mime, data in candidates[:n]:
        node = {
            "id": node_id("File", entity, project, run_id, name),
            "name": name,
            "url": f"https://api.wandb.ai/files/{entity}/{project}/{run_id}/{name}",
            "directUrl": f"https://storage.googleapis.com/wandb-production/{entity}/{project}/{run_id}/{name}",
            "sizeBytes": len(data),
            "mimetype": mime,
            "updatedAt": updated,
            "md5": store_files.md5_b64(data),
        }
        out.append((node, data))
    return out


# GraphQL run field -> Run attribute; mirrors store.runs.upsert_runs (a test checks they agree).
_RUN_FIELDS = {
    "id": "storage_id", "displayName": "display_name", "state": "state",
    "sweepName": "sweep_name", "group": "group", "jobType": "job_type", "commit": "commit",
    "description": "description", "notes": "notes", "host": "host", "readOnly": "read_only",
    "createdAt": "created_at", "heartbeatAt": "heartbeat_at", "historyLineCount": "history_line_count",
    "projectId": "project_internal_id", "config": "config_raw", "summaryMetrics": "summary_raw",
    "systemMetrics": "system_metrics_raw",
}


def _bulk_insert_runs(session: Session, proj: Project, nodes: list[dict[str, Any]]) -> list[Run]:
    """Insert new runs in bulk: the rows and value index ``store.runs.upsert_runs`` would write.

    ``upsert_runs`` handles one run at a time (lookups, flushes, an ORM bulk insert per run);
    for tens of thousands of fresh synthetic runs this one-shot version is ~10x faster.
    """
    users = {u.username: u.pk for u in session.scalars(select(User))}
    stamp = store_runs.now_iso()
    runs = []
    for node in nodes:
        run = Run(project_pk=proj.pk, run_id=node["name"])
        for field_name, attr in _RUN_FIELDS.items():
            setattr(run, attr, node.get(field_name))
        run.tags_raw = dumps(node["tags"])
        run.history_keys_raw = dumps(node["historyKeys"])
        run.user_pk = users.get(node["user"]["username"])
        run.created_ts = store_values.parse_timestamp(run.created_at)
        run.heartbeat_ts = store_values.parse_timestamp(run.heartbeat_at)
        run.synced_at = stamp
        runs.append(run)
    session.add_all(runs)
    session.flush()
    value_rows: list[dict[str, Any]] = []
    for run, node in zip(runs, nodes):
        value_rows.extend(store_values.run_value_rows(
            run.pk, store_values.loads(run.config_raw), store_values.loads(run.summary_raw),
            store_runs.filter_columns(run, node["user"]["username"])))
    if value_rows:
        _insert_values(session, value_rows)
    return runs


_VALUE_COLS = ("run_pk", "root", "path", "elem", "kind", "num", "nan", "txt", "size")


def _insert_values(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert ``run_values`` rows; on SQLite straight through the driver (no per-row
    SQLAlchemy parameter processing: these are the bulk of a synthetic store)."""
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        session.execute(insert(RunValue.__table__), rows)
        return
    sql = (f"INSERT INTO run_values ({', '.join(_VALUE_COLS)}) "
           f"VALUES ({', '.join('?' for _ in _VALUE_COLS)})")
    conn.exec_driver_sql(sql, [tuple(int(r[c]) if c == "nan" else r[c] for c in _VALUE_COLS)
                               for r in rows])


def _append_history(session: Any, run_pk: int, rows: list[dict[str, Any]], stream: str) -> None:
    from .store import history  # written by the history module's owner; imported late

    history.append_rows(session, run_pk, rows, stream=stream)


def generate(
    engine: Engine,
    *,
    entity: str = "synth",
    project: str = "demo",
    runs: int = 20,
    history_steps: int = 50,
    history_keys: int = 5,
    system_events: int = 5,
    seed: int = 0,
    users: int = 3,
    sweeps: int = 2,
    files_per_run: int = 3,
    artifact_collections: int = 2,
    artifact_versions: int = 3,
    reports: int = 2,
    running_every: int = 10,
    batch_size: int = 500,
    progress: Callable[[int, int], None] | None = None,
) -> SynthResult:
    """Write a deterministic synthetic project into a store.

    Args:
        engine: a migrated store (see :func:`wandb_mirror.store.open_store`).
        entity, project: where to put it (the project is created or extended).
        runs: number of runs.
        history_steps: rows of history per run (0: no history); steps start at 1..10.
        history_keys: metric keys per row besides ``_step/_runtime/_timestamp`` (keys past the
            third are sparse).
        system_events: system-metric rows per run.
        seed: everything random derives from it.
        users, sweeps, files_per_run (0..5), artifact_collections, artifact_versions, reports:
            sizes of the other object kinds.
        running_every: every n-th run is ``running`` (0: none).
        batch_size: runs written per transaction.
        progress: called with ``(done, total)`` after each batch.

    Returns:
        A :class:`SynthResult` naming what was created.
    """
    rng = random.Random(seed)
    result = SynthResult(entity=entity, project=project)
    internal_id = str(zlib.crc32(f"{entity}/{project}".encode()) % 1_000_000 + 1)
    user_nodes = [{"id": node_id("User", f"user{u}"), "name": f"User {u}",
                   "username": f"{entity}-user{u}", "email": f"user{u}@example.com"}
                  for u in range(max(1, users))]
    result.usernames = [u["username"] for u in user_nodes]

    with session_scope(engine, "writing synthetic project") as session:
        proj = store_runs.upsert_project(
            session, entity, project, upstream_id=node_id("Project", project, entity),
            internal_id=internal_id, created_at=_iso(BASE_TIME - timedelta(days=30)),
            is_benchmark=False, read_only=False, description=f"synthetic project (seed {seed})")
        for u in user_nodes:
            store_runs.upsert_user(session, u)
        sweep_specs = []
        for s in range(sweeps):
            name = "".join(rng.choice(_ID_CHARS) for _ in range(8))
            metric, goal = (("loss", "minimize") if s % 2 == 0 else ("acc", "maximize"))
            sweep_specs.append({"name": name, "metric": metric, "goal": goal, "runs": []})
            result.sweep_names.append(name)
        project_pk = proj.pk

    done = 0
    run_rows_info: list[tuple[str, float]] = []  # (run_id, final loss)
    while done < runs:
        n = min(batch_size, runs - done)
        with session_scope(engine, "writing synthetic runs") as session:
            proj = session.get(Project, project_pk)
            nodes, extras = [], []
            for i in range(done, done + n):
                run_id = _run_id(rng)
                created = BASE_TIME + timedelta(minutes=7 * i, seconds=rng.randint(0, 59))
                runtime = round(rng.uniform(30, 5000), 3)
                state = "running" if running_every and i % running_every == running_every - 1 \
                    else rng.choice(STATES)
                sweep = sweep_specs[i % len(sweep_specs)] if sweep_specs and i % 3 == 0 else None
                params = ({"lr": round(10 ** rng.uniform(-5, -1), 8),
                           "batch_size": rng.choice([16, 32, 64, 128])} if sweep else None)
                cfg = _config(rng, i, params)
                diverged = i % 13 == 4
                start_step = rng.randint(1, 10)
                rows = _history(rng, history_steps, history_keys, start_step,
                                created.timestamp(), diverged)
                events = _events(rng, system_events, created.timestamp())
                summary = _summary(rng, rows, runtime, i, diverged)
                user = user_nodes[i % len(user_nodes)]
                tags = sorted({rng.choice(TAGS) for _ in range(rng.randint(0, 3))})
                node = {
                    "id": node_id("Run", run_id, project, entity),
                    "name": run_id,
                    "projectId": internal_id,
                    "displayName": f"{rng.choice(ADJECTIVES)}-{rng.choice(NOUNS)}-{i + 1}",
                    "tags": tags,
                    "sweepName": sweep["name"] if sweep else None,
                    "state": state,
                    "group": f"group-{i % 4}" if i % 5 != 0 else None,
                    "jobType": rng.choice(["train", "eval", None]),
                    "commit": f"{rng.getrandbits(40):010x}",
                    "description": None,
                    "notes": f"run {i} notes: *markdown* ✓" if i % 6 == 0 else None,
                    "host": f"node-{i % 8}",
                    "readOnly": False,
                    "createdAt": _iso(created),
                    "heartbeatAt": _iso(created + timedelta(seconds=runtime)),
                    "historyLineCount": len(rows),
                    "user": {"name": user["name"], "username": user["username"]},
                    "config": dumps(cfg),
                    "summaryMetrics": dumps(summary),
                    "systemMetrics": dumps({"cpu": round(rng.uniform(5, 95), 2),
                                            "gpu.0.memory": round(rng.uniform(0, 80), 2)}),
                    "historyKeys": _history_keys(rows),
                }
                nodes.append(node)
                extras.append((rows, events, cfg, node))
                if sweep:
                    sweep["runs"].append((run_id, summary.get(sweep["metric"])))
                loss = summary.get("loss")
                run_rows_info.append((run_id, loss if isinstance(loss, float) else math.nan))
                result.run_ids.append(run_id)
            run_rows = _bulk_insert_runs(session, proj, nodes)
            contents: dict[str, bytes] = {}
            file_rows: list[dict[str, Any]] = []
            for run, (rows, events, cfg, node) in zip(run_rows, extras):
                if rows:
                    _append_history(session, run.pk, rows, "default")
                    result.history_rows += len(rows)
                if events:
                    _append_history(session, run.pk, events, "system")
                    result.event_rows += len(events)
                if files_per_run:
                    for fnode, data in _files_for_run(rng, entity, project, run.run_id, cfg,
                                                      files_per_run, node["heartbeatAt"]):
                        file_rows.append({
                            "run_pk": run.pk, "name": fnode["name"], "upstream_id": fnode["id"],
                            "url": fnode["url"], "direct_url": fnode["directUrl"],
                            "size_bytes": fnode["sizeBytes"], "mimetype": fnode["mimetype"],
                            "updated_at": fnode["updatedAt"], "md5": fnode["md5"]})
                        contents[fnode["md5"]] = data
            if file_rows:
                session.execute(insert(RunFile.__table__), file_rows)
            store_files.put_contents(session, contents, fetched_at=_iso(BASE_TIME))
        done += n
        if progress:
            progress(done, runs)

    with session_scope(engine, "writing synthetic sweeps, artifacts and reports") as session:
        proj = session.get(Project, project_pk)
        sweep_nodes = []
        for s, spec in enumerate(sweep_specs):
            metric_values = [v for _, v in spec["runs"] if isinstance(v, (int, float)) and not math.isnan(v)]
            best = (min(metric_values) if spec["goal"] == "minimize" else max(metric_values)) \
                if metric_values else None
            created = BASE_TIME + timedelta(hours=s)
            sweep_nodes.append({
                "__typename": "Sweep", "id": node_id("Sweep", spec["name"], project, entity),
                "name": spec["name"], "displayName": f"sweep-{s}", "method": "bayes",
                "state": "FINISHED" if s % 2 == 0 else "RUNNING", "description": None,
                "bestLoss": best, "config": _sweep_yaml(f"sweep-{s}", spec["metric"], spec["goal"]),
                "createdAt": _iso(created), "updatedAt": _iso(created + timedelta(days=1)),
                "runCount": len(spec["runs"]), "runCountExpected": 20 if s % 2 else None,
            })
        store_sweeps.upsert_sweeps(session, proj, sweep_nodes)
        _write_artifacts(session, proj, rng, result, artifact_collections, artifact_versions)
        report_nodes = []
        for r in range(reports):
            user = user_nodes[r % len(user_nodes)]
            rid = node_id("View", project, r)
            spec = {"version": 5, "panelGroups": [{"name": f"Section {r}", "runSets": [
                {"filters": {"$or": [{"$and": [{"state": "finished"}]}]},
                 "sort": {"keys": [{"key": {"section": "run", "name": "createdAt"},
                                    "ascending": False}]}}]}],
                "blocks": [{"type": "paragraph", "children": [{"text": f"Report {r} ✓"}]}],
                "width": "readable", "nan": float("nan")}
            report_nodes.append({
                "id": rid, "name": f"report-{r}", "displayName": f"Report {r}: results",
                "description": f"what we learned, part {r}",
                "user": {"username": user["username"], "photoUrl": None, "email": user["email"]},
                "spec": dumps(spec),
                "createdAt": _iso(BASE_TIME + timedelta(days=r)),
                "updatedAt": _iso(BASE_TIME + timedelta(days=r, hours=2)),
            })
            result.report_ids.append(rid)
        store_reports.upsert_reports(session, proj, report_nodes)
    return result


def _write_artifacts(session: Any, proj: Any, rng: random.Random, result: SynthResult,
                     n_collections: int, n_versions: int) -> None:
    runs = list(session.scalars(
        select(Run).where(Run.project_pk == proj.pk).order_by(Run.created_ts, Run.pk)))
    kinds = [("dataset", "mnist-train"), ("model", "resnet"), ("dataset", "imagenet-val"),
             ("eval", "scores")]
    counter = 0
    for c in range(n_collections):
        type_name, base = kinds[c % len(kinds)]
        coll_name = base if c < len(kinds) else f"{base}-{c}"
        created_coll = BASE_TIME + timedelta(hours=2 + c)
        store_artifacts.upsert_artifact_types(session, proj, [{
            "id": node_id("ArtifactType", proj.name, type_name), "name": type_name,
            "description": f"{type_name} artifacts", "createdAt": _iso(BASE_TIME)}])
        store_artifacts.upsert_collections(session, proj, [{
            "__typename": "ArtifactSequence", "id": node_id("ArtifactSequence", proj.name, coll_name),
            "name": coll_name, "description": f"the {coll_name} {type_name}",
            "createdAt": _iso(created_coll), "updatedAt": _iso(created_coll + timedelta(days=2)),
            "type": {"name": type_name},
            "tags": {"edges": [{"node": {"id": node_id("Tag", coll_name), "name": "synthetic"}}]}}])
        for v in range(n_versions):
            counter += 1
            art_id = node_id("Artifact", proj.name, coll_name, v)
            files = {
                "data/part-0.csv": "".join(f"{k},{rng.random():.6f}\n" for k in range(20 + v)).encode(),
                "README.md": f"# {coll_name} v{v}\n\nsynthetic ✓\n".encode(),
            }
            if v % 2:
                files[f"extra/notes-{v}.txt"] = f"version {v} notes\n".encode()
            contents: dict[str, Any] = {}
            for path, data in sorted(files.items()):
                md5 = store_files.md5_b64(data)
                store_files.put_content(session, md5, data, fetched_at=_iso(BASE_TIME))
                contents[path] = {"digest": md5, "size": len(data), "birthArtifactID": art_id}
            contents["refs/remote.bin"] = {"digest": f"{rng.getrandbits(128):032x}",
                                           "ref": f"s3://synth-bucket/{coll_name}/remote-{v}.bin",
                                           "size": 4096, "extra": {"etag": f"etag-{v}"}}
            manifest = {"version": 1, "storagePolicy": "wandb-storage-policy-v1",
                        "storagePolicyConfig": {"storageLayout": "V2"}, "contents": contents}
            created = created_coll + timedelta(hours=v)
            aliases = [{"id": node_id("ArtifactAlias", art_id, f"v{v}"), "alias": f"v{v}"}]
            if v == n_versions - 1:
                aliases.append({"id": node_id("ArtifactAlias", art_id, "latest"), "alias": "latest"})
            if v == 0:
                aliases.append({"id": node_id("ArtifactAlias", art_id, "baseline"), "alias": "baseline"})
            node = {
                "__typename": "Artifact", "id": art_id,
                "artifactSequence": {"__typename": "ArtifactSequence", "name": coll_name},
                "versionIndex": v, "artifactType": {"name": type_name},
                "description": f"{coll_name} version {v}" if v % 2 == 0 else None,
                "metadata": dumps({"rows": 20 + v, "source": "synth", "score": rng.random()}),
                "ttlDurationSeconds": -1, "ttlIsInherited": True,
                "tags": [{"__typename": "Tag", "id": node_id("Tag", art_id), "name": f"t{v}"}] if v else [],
                "historyStep": v * 10 if type_name == "model" else None,
                "state": "COMMITTED", "size": sum(e.get("size", 0) for e in contents.values()),
                "digest": store_artifacts.manifest_digest(contents),
                "commitHash": f"{rng.getrandbits(48):012x}", "fileCount": len(contents),
                "createdAt": _iso(created), "updatedAt": _iso(created + timedelta(minutes=5)),
                "aliases": aliases,
            }
            (version,) = store_artifacts.upsert_artifacts(session, proj, [node])
            store_artifacts.put_manifest(session, version, dumps(manifest))
            result.artifact_names.append(f"{coll_name}:v{v}")
            if runs:
                producer = runs[(counter * 3) % len(runs)]
                store_artifacts.link_run_artifact(session, producer, version, "output")
                consumer = runs[(counter * 5 + 1) % len(runs)]
                if consumer.pk != producer.pk:
                    store_artifacts.link_run_artifact(session, consumer, version, "input")
