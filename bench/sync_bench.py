"""Sync benchmark: history ingest from a local serve, requests per 1,000 runs, peak RSS.

Runs each sync in a fresh subprocess (``wandb-mirror sync``) against ``python -m
wandb_mirror.server`` over a synth store, so RSS is the sync's own (ru_maxrss of the child).

    python bench/sync_bench.py                 # 1M-step run + 1,000-run project
    python bench/sync_bench.py --steps 200000 --runs 200   # quicker
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wandb_mirror import synth
from wandb_mirror.store import open_store

KEY = "b" * 40


def serve(db: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "wandb_mirror.server", "--db", str(db),
                             "--port", "0", *extra], stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit(f"server did not start: {url!r}")
    return proc, url


def _peak_rss(pid: int) -> int:
    """VmHWM (peak resident set) of a live process, in bytes (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def timed_sync(url: str, db: Path, path: str, env: dict[str, str]) -> tuple[float, int, str]:
    """(seconds, peak RSS bytes of the sync process itself, its summary)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "wandb_mirror", "sync", path, "--db", str(db),
                             "--base-url", url, "--api-key", KEY, "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = 0
    deadline = time.monotonic() + 3600
    while proc.poll() is None and time.monotonic() < deadline:
        peak = max(peak, _peak_rss(proc.pid))
        time.sleep(0.05)
    out, err = proc.communicate(timeout=60)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(err)
    return seconds, peak, out.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--keys", type=int, default=10)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--page", type=int, default=10_000, help="history rows per page")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    env = {**os.environ, "WANDB_MIRROR_HISTORY_PAGE_SIZE": str(args.page)}
    rows = []

    big = tmp / "big.db"
    t = time.perf_counter()
    synth.generate(open_store(big), project="big", runs=1, history_steps=args.steps,
                   history_keys=args.keys, system_events=10, files_per_run=1, sweeps=0,
                   artifact_collections=0, reports=0, running_every=0, seed=1)
    print(f"generated {args.steps}-step run in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    for label, extra in (("GraphQL pages", ()), ("parquet export", ("--export-parquet",))):
        proc, url = serve(big, *extra)
        try:
            dest = tmp / f"dest-{len(rows)}.db"
            seconds, rss, summary = timed_sync(url, dest, "synth/big", env)
        finally:
            proc.terminate()
            proc.wait(10)
        rows.append((f"history ingest, 1 run x {args.steps} steps x {args.keys} keys ({label})",
                     f"{args.steps / seconds:,.0f} rows/s", f"{seconds:.1f} s",
                     f"{rss / 2**20:,.0f} MB"))

    many = tmp / "many.db"
    synth.generate(open_store(many), project="many", runs=args.runs, history_steps=20,
                   history_keys=3, system_events=2, files_per_run=2, seed=2)
    proc, url = serve(many)
    try:
        dest = tmp / "many-dest.db"
        seconds, rss, summary = timed_sync(url, dest, "synth/many", env)
        requests = int(summary.splitlines()[-1].split()[0])
        again, _, summary2 = timed_sync(url, dest, "synth/many", env)
        requests2 = int(summary2.splitlines()[-1].split()[0])
    finally:
        proc.terminate()
        proc.wait(10)
    rows.append((f"first sync, {args.runs} runs (20 steps, 2 files each)",
                 f"{requests * 1000 / args.runs:,.0f} requests / 1,000 runs", f"{seconds:.1f} s",
                 f"{rss / 2**20:,.0f} MB"))
    rows.append(("unchanged re-sync of that project", f"{requests2} requests", f"{again:.1f} s",
                 "-"))

    width = max(len(r[0]) for r in rows)
    print(f"{'workload':<{width}}  {'rate':>30}  {'time':>8}  {'peak RSS':>9}")
    for r in rows:
        print(f"{r[0]:<{width}}  {r[1]:>30}  {r[2]:>8}  {r[3]:>9}")


if __name__ == "__main__":
    main()
