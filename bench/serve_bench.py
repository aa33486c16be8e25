"""Benchmark: full-fragment ``Runs`` pages of 50 served by ``wandb-mirror serve``.

Fixed workload: a synthetic store of ``--runs`` runs (seed 0), served on 127.0.0.1; a client
walks every page of ``project.runs`` with the exact document wandb 0.31 sends for
``api.runs(path, lazy=False)`` (and, second, the lightweight one), over one keep-alive
connection per client process, against the server running in its own process: first
with empty caches (cold: a sync worker walking a project once), then again (warm: identical
requests are answered from the reply cache). Prints a table; not a test (nothing asserts a time).

    .venv/bin/python bench/serve_bench.py [--runs 2000] [--clients 1 4] [--passes 3]
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from wandb_mirror import synth
from wandb_mirror.store import open_store

WARMUP_PROJECT, WARMUP_RUNS = "warmup", 100
AUTH = "Basic " + __import__("base64").b64encode(b"api:" + b"x" * 40).decode()


def runs_document(lazy: bool) -> str:
    """The document wandb 0.31 sends for ``api.runs(..., lazy=lazy)``."""
    from wandb.apis.public.runs import _create_runs_query

    return _create_runs_query(lazy=lazy)


_PAGE_INFO = json.JSONDecoder()


def _light_page(raw: bytes) -> tuple[int, str, bool]:
    """(runs, last cursor, has next page) of a reply, read without decoding the whole body: a
    load generator, so the client's JSON decoding (~3 ms a 100 kB page, with its escaped
    config strings) does not take the CPU the server is measured on. Escaped strings inside
    the reply cannot hold an unescaped ``"cursor":"``, so counting it counts the edges."""
    if not raw.startswith(b'{"data":{"project":{') or b'"errors":' in raw:
        raise RuntimeError(f"unexpected reply: {raw[:300]!r}")
    text = raw.decode()
    start = text.rindex('"cursor":"') + len('"cursor":"')
    cursor = text[start:text.index('"', start)]
    info, _ = _PAGE_INFO.raw_decode(text, text.rindex('"pageInfo":') + len('"pageInfo":'))
    return text.count('"cursor":"'), cursor, bool(info["hasNextPage"])


def walk(host: str, port: int, query: str, per_page: int, project: str = "demo",
         light: bool = False) -> tuple[int, int, str]:
    """All pages of the project's runs; returns (pages, runs, the serving worker).

    ``light``: read each reply as :func:`_light_page` does instead of ``json.loads``."""
    conn = http.client.HTTPConnection(host, port, timeout=60)
    cursor, pages, runs = None, 0, 0
    try:
        while True:
            body = json.dumps({"query": query, "operationName": "", "variables": {
                "project": project, "entity": "synth", "order": "+created_at", "filters": "{}",
                "perPage": per_page, "cursor": cursor}})
            conn.request("POST", "/graphql", body, {"Content-Type": "application/json",
                                                    "Authorization": AUTH})
            resp = conn.getresponse()
            raw = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{resp.status}: {raw[:300]!r}")
            if light:
                count, cursor, more = _light_page(raw)
            else:
                data = json.loads(raw)
                if data.get("errors"):
                    raise RuntimeError(f"errors: {data['errors']}")
                conn_runs = data["data"]["project"]["runs"]
                count, more = len(conn_runs["edges"]), conn_runs["pageInfo"]["hasNextPage"]
                cursor = conn_runs["edges"][-1]["cursor"] if count else None
            pages += 1
            runs += count
            if not more:
                return pages, runs, resp.getheader("X-Wandb-Mirror-Worker") or "0"
    finally:
        conn.close()


def _client(host: str, port: int, query: str, per_page: int, light: bool, start: Any,
            out: Any) -> None:
    """One client process: wait for the start signal, walk, report (pages, runs) or the error."""
    try:
        start.wait(60)
        out.put(walk(host, port, query, per_page, light=light)[:2])
    except BaseException as exc:  # noqa: BLE001 - reported by the parent
        out.put(exc)


def measure(host: str, port: int, query: str, per_page: int, clients: int, light: bool
            ) -> tuple[float, int]:
    """Pages/s over ``clients`` client processes each walking every page once.

    Processes, not threads: decoding ~100 kB of JSON a page costs the client ~1-2 ms, and
    client threads sharing one GIL would measure the client instead of the server.
    """
    # spawn, not fork: a forked child's garbage collector would touch (and copy) every page
    # of this process's heap, wandb included, and measure that instead
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_client, args=(host, port, query, per_page, light, start, out))
             for _ in range(clients)]
    for proc in procs:
        proc.start()
    time.sleep(3.0)  # let them start up and reach the start line
    t0 = time.perf_counter()
    start.set()
    results = [out.get(timeout=600) for _ in procs]
    elapsed = time.perf_counter() - t0
    for proc in procs:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    pages = sum(p for p, _ in results)
    return pages / elapsed, sum(r for _, r in results)


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of a process and its live children (the ``--workers``)
    (Linux ``/proc``), 0.0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, ValueError, IndexError):
        return 0.0
    return own + sum(cpu_seconds(int(child)) for child in children)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--per-page", type=int, default=50)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--passes", type=int, default=3, help="warm passes (>= 1)")
    parser.add_argument("--db", default=None, help="reuse/create this store file")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="serve --workers values to measure")
    parser.add_argument("--client", nargs="+", choices=["decode", "light"],
                        default=["decode", "light"],
                        help="decode: clients json.loads every reply (as wandb does); light: a "
                             "load generator reading only the cursor (the server's capacity)")
    parser.add_argument("--fragment", nargs="+", choices=["full", "lazy"],
                        default=["full", "lazy"])
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    db = Path(args.db) if args.db else Path(tmp.name) / "bench.db"
    fresh = not db.exists()
    engine = open_store(db)
    if fresh:
        t0 = time.perf_counter()
        synth.generate(engine, runs=args.runs, history_steps=10, system_events=2,
                       files_per_run=1, seed=0)
        synth.generate(engine, project=WARMUP_PROJECT, runs=WARMUP_RUNS, history_steps=10,
                       system_events=2, files_per_run=1, seed=1)
        print(f"synth: {args.runs} runs in {time.perf_counter() - t0:.1f} s")
    engine.dispose()
    print(f"\nServe: Runs pages of {args.per_page} "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)\n")
    print("| fragment | client | workers | clients | fresh process pages/s | cold pages/s "
          "| cold server CPU ms/page | warm pages/s | warm server CPU ms/page |")
    print("|---|---|---|---|---|---|---|---|---|")
    try:
        for fragment in args.fragment:
            query = runs_document(fragment == "lazy")
            name = "lightweight (lazy=True)" if fragment == "lazy" else "full (lazy=False)"
            for client in args.client:
                for workers in args.workers:
                    for clients in args.clients:
                        opts = {"workers": workers, "light": client == "light"}
                        first, _ = run_server_passes(db, query, args.per_page, clients, 0,
                                                     warm_process=False, **opts)
                        cold, warm = run_server_passes(db, query, args.per_page, clients,
                                                       args.passes, **opts)
                        assert warm is not None
                        print(f"| {name} | {client} | {workers} | {clients} | {first[0]:.0f} | "
                              f"{cold[0]:.0f} | {cold[1]:.1f} | {warm[0]:.0f} | {warm[1]:.1f} |",
                              flush=True)
    finally:
        tmp.cleanup()


def run_server_passes(db: Path, query: str, per_page: int, clients: int, passes: int,
                      warm_process: bool = True, workers: int = 1, light: bool = False
                      ) -> tuple[tuple[float, float], tuple[float, float] | None]:
    """One fresh server process: a cold pass (empty caches), then ``passes`` warm ones.

    ``warm_process``: before the cold pass, walk another project with the same document, so
    the process has parsed and validated it and compiled its SQL (a long-running server's
    state) while the measured project's caches stay empty. Without it, the cold pass also
    pays those one-off costs (a freshly started server).

    Returns ``(pages/s, server CPU ms/page)`` of the cold pass and the medians of the warm
    passes (None without passes).
    The server runs in its own process, as `wandb-mirror serve` does, so the client's JSON
    parsing does not share a GIL with it.
    """
    proc = subprocess.Popen([sys.executable, "-m", "wandb_mirror.server", "--db", str(db),
                             "--port", "0", "--workers", str(workers)],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        host, port_text = url.removeprefix("http://").split(":")
        port = int(port_text)
        # Warm the process itself (schema build, imports), not its caches.
        conn = http.client.HTTPConnection(host, port, timeout=60)
        conn.request("POST", "/graphql", json.dumps({"query": "{ viewer { id } }"}),
                     {"Content-Type": "application/json", "Authorization": AUTH})
        conn.getresponse().read()
        conn.close()
        if warm_process:  # every worker: connections go to whichever accepts first
            seen: set[str] = set()
            for _ in range(10 * workers):
                seen.add(walk(host, port, query, per_page, project=WARMUP_PROJECT)[2])
                if len(seen) >= workers:
                    break
        results = []
        for _ in range(passes + 1):
            cpu0 = cpu_seconds(proc.pid)
            rate, runs = measure(host, port, query, per_page, clients, light)
            pages = clients * -(-(runs // clients) // per_page)
            results.append((rate, (cpu_seconds(proc.pid) - cpu0) / max(1, pages) * 1000))
        warm = results[1:]
        if not warm:
            return results[0], None
        return results[0], (statistics.median(r for r, _ in warm),
                            statistics.median(c for _, c in warm))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


if __name__ == "__main__":
    main()
