"""``wandb-mirror demo``: the whole tool on a fresh machine, with no account and no network.

1. builds a synthetic W&B project (runs, history, sweeps, files, artifacts) in a temp store;
2. serves it on 127.0.0.1 over W&B's GraphQL protocol (the stand-in for api.wandb.ai);
3. syncs it into a second store with progress bars;
4. runs a few real queries through :class:`wandb_mirror.Api` (offline, from the store), each
   timed next to the same call through the real ``wandb.Api`` over the protocol when the
   ``wandb`` package is installed.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from . import synth
from .config import load_settings
from .server import make_server
from .store.schema import open_store
from .sync import run_sync

__all__ = ["run_demo"]

KEY = "demo" + "0" * 36
PATH = "synth/demo"
FILTERS = {"$and": [{"state": "finished"}, {"config.lr": {"$lt": 0.005}},
                    {"summary_metrics.loss": {"$gte": 0}}]}
ORDER = "+summary_metrics.loss"


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


@contextlib.contextmanager
def _wandb_env(tmp: Path) -> Iterator[None]:
    keep = dict(os.environ)
    os.environ["WANDB_ERROR_REPORTING"] = "false"
    os.environ["WANDB_SILENT"] = "true"
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR",
                 "WANDB_ARTIFACT_DIR"):
        (tmp / name.lower()).mkdir(exist_ok=True)
        os.environ[name] = str(tmp / name.lower())
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(keep)


def _queries(api: Any, tmp: Path) -> list[tuple[str, Callable[[], str]]]:
    """(label, call returning a one-line summary) pairs, the same for both APIs."""
    def runs() -> str:
        found = api.runs(PATH, FILTERS, order=ORDER, per_page=50)
        top = [r for _, r in zip(range(3), found)]
        return (f"{len(found)} runs; best: " + ", ".join(
            f"{r.id} loss={r.summary.get('loss'):.4g}" for r in top))

    def history() -> str:
        run = api.run(f"{PATH}/{first_id}")
        h = run.history(keys=["loss"], samples=500)
        return f"{len(h)} rows of loss, min {h['loss'].min():.4g} at step " \
               f"{int(h.loc[h['loss'].idxmin(), '_step'])}"

    def best() -> str:
        sweep = api.sweep(f"{PATH}/{sweep_name}")
        run = sweep.best_run()
        return f"sweep {sweep.id}: best run {run.id} ({run.summary.get('loss'):.4g})"

    def manifest() -> str:
        art = api.artifact(f"{PATH}/{artifact_name}")
        entries = art.manifest.entries
        return f"{art.name} {art.digest[:8]}…: {len(entries)} entries, " \
               f"{sum((e.size or 0) for e in entries.values())} bytes"

    first_id = _first_run_id
    sweep_name = _sweep_name
    artifact_name = _artifact_name
    return [("runs(filters, order)", runs), ("run.history(keys, samples=500)", history),
            ("sweep.best_run()", best), ("artifact(...).manifest", manifest)]


_first_run_id = ""
_sweep_name = ""
_artifact_name = ""


def run_demo(*, runs: int = 300, steps: int = 2000, keep: str | None = None,
             console: Console | None = None, with_wandb: bool = True) -> dict[str, Any]:
    """Run the demo; returns what it measured (for tests)."""
    global _first_run_id, _sweep_name, _artifact_name
    console = console or Console()
    tmp = Path(keep or tempfile.mkdtemp(prefix="wandb-mirror-demo-"))
    tmp.mkdir(parents=True, exist_ok=True)
    console.rule("[bold]wandb-mirror demo")
    console.print(f"working in {tmp} (no account, no network: everything on 127.0.0.1)")

    upstream_db = tmp / "upstream.db"
    upstream = open_store(upstream_db)
    made, secs = _timed(lambda: synth.generate(upstream, runs=runs, history_steps=steps,
                                               history_keys=6, seed=42))
    _first_run_id = made.run_ids[0]
    _sweep_name = made.sweep_names[0]
    _artifact_name = made.artifact_names[-1].split(":")[0] + ":latest"
    console.print(f"1. synthetic upstream: {runs} runs x {steps} steps, "
                  f"{len(made.sweep_names)} sweeps, {len(made.artifact_names)} artifact "
                  f"versions ({secs:.1f}s)")

    server = make_server(upstream).start()
    out: dict[str, Any] = {"dir": str(tmp), "url": server.url}
    try:
        console.print(f"2. serving it at {server.url} (W&B GraphQL protocol)")
        mirror_db = tmp / "mirror.db"
        settings = load_settings(env={}, db=str(mirror_db), base_url=server.url, api_key=KEY)
        console.print(f"3. wandb-mirror sync {PATH} --db {mirror_db}")
        result = run_sync(settings, [PATH], progress=console.is_terminal)
        console.print(result.summary())
        out["sync_requests"] = result.requests

        console.print("4. the same queries: wandb_mirror.Api (from the store) vs wandb.Api "
                      "(over the protocol)")
        from .api import Api

        mirror = Api(db=mirror_db, offline=True, overrides={"entity": "synth"})
        rows = []
        ours = {label: _timed(fn) for label, fn in _queries(mirror, tmp)}
        repeat = {label: min(_timed(fn)[1] for _ in range(3))
                  for label, fn in _queries(mirror, tmp)}
        theirs: dict[str, tuple[Any, float]] = {}
        note = ""
        if with_wandb:
            try:
                import wandb

                with _wandb_env(tmp):
                    real = wandb.Api(api_key=KEY, overrides={"base_url": server.url},
                                     timeout=60)
                    theirs = {label: _timed(fn) for label, fn in _queries(real, tmp)}
            except ImportError:
                note = "(install wandb to compare: pip install 'wandb==0.31.*')"
            except Exception as exc:  # the comparison is optional; say why it is missing
                note = f"(wandb.Api comparison failed: {type(exc).__name__}: {exc})"
        table = Table(title="answers and times")
        table.add_column("call")
        table.add_column("wandb_mirror.Api")
        table.add_column("first", justify="right")
        table.add_column("repeat", justify="right")
        table.add_column("wandb.Api", justify="right")
        table.add_column("speed-up (repeat)", justify="right")
        for label, (answer, t) in ours.items():
            other = theirs.get(label)
            again = repeat[label]
            table.add_row(label, str(answer), f"{t * 1000:.1f} ms", f"{again * 1000:.1f} ms",
                          f"{other[1] * 1000:.0f} ms" if other else "-",
                          f"{other[1] / again:.0f}x" if other and again > 0 else "-")
            rows.append({"call": label, "answer": answer, "mirror_s": t, "repeat_s": again,
                         "wandb_s": other[1] if other else None,
                         "same": (other[0] == answer) if other else None})
        console.print(table)
        if note:
            console.print(note)
        for row in rows:
            if row["same"] is False:
                console.print(f"[yellow]{row['call']}: answers differ (wandb: "
                              f"{theirs[row['call']][0]})")
        out["rows"] = rows
        console.print(f"Try it: wandb-mirror runs {PATH} --db {mirror_db} --limit 5")
    finally:
        server.stop()
    return out
