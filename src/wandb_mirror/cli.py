"""The ``wandb-mirror`` command line: parse, call one library function, format. Nothing else."""
from __future__ import annotations

import logging
import sys
import traceback
from typing import Any

import click

from . import __version__
from .config import Settings, load_settings, prepare_db_location
from .errors import MirrorError, SyncInterrupted

__all__ = ["main"]


class _Context:
    def __init__(self, debug: bool, config: str | None) -> None:
        self.debug = debug
        self.config = config

    def settings(self, **overrides: Any) -> Settings:
        settings = load_settings(self.config, **overrides)
        prepare_db_location(settings.db)
        return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wandb-mirror")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
              help="Config file (default: $WANDB_MIRROR_CONFIG or the user config dir).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, config: str | None) -> None:
    """A local-first mirror of the Weights & Biases public API.

    \b
    Example:
      wandb-mirror db upgrade --db ./store.db
    """
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = _Context(debug, config)


@cli.group()
def db() -> None:
    """Manage the store's schema.

    \b
    Example:
      wandb-mirror db upgrade --db ./store.db
    """


@db.command("upgrade")
@click.option("--db", "db_path", default=None, help="Store file or SQLAlchemy URL.")
@click.pass_obj
def db_upgrade(obj: _Context, db_path: str | None) -> None:
    """Create the store or upgrade its schema to this version's newest revision.

    \b
    Example:
      wandb-mirror db upgrade --db ./store.db
    """
    from .store.engine import make_engine
    from .store.schema import current_revision, head_revision, upgrade

    settings = obj.settings(db=db_path)
    engine = make_engine(settings.db)
    before = current_revision(engine)
    after = upgrade(engine)
    if before == after:
        click.echo(f"{settings.db}: already at revision {after} (newest: {head_revision()})")
    else:
        click.echo(f"{settings.db}: upgraded from {before or 'empty'} to {after}")


@cli.command()
@click.argument("paths", nargs=-1)
@click.option("--db", "db_path", default=None, help="Store file or SQLAlchemy URL.")
@click.option("--base-url", default=None, help="W&B server (default: WANDB_BASE_URL or config).")
@click.option("--api-key", default=None, envvar=None,
              help="API key (default: WANDB_API_KEY, then netrc, then config).")
@click.option("--full", is_flag=True, help="Full reconciliation: re-list everything, mark "
              "runs deleted upstream.")
@click.option("--wait", type=float, default=0.0, show_default=True,
              help="Seconds to wait for another sync of the same store to finish.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bars (default: when stderr is a terminal).")
@click.pass_obj
def sync(obj: _Context, paths: tuple[str, ...], db_path: str | None, base_url: str | None,
         api_key: str | None, full: bool, wait: float, progress: bool | None) -> None:
    """Pull projects (ENTITY/PROJECT ...) from a W&B server into the store.

    Without PATHS, syncs the projects listed under [sync] projects in the config.

    \b
    Example:
      wandb-mirror sync my-team/my-project --db ./mirror.db
    """
    import signal
    import threading

    from .sync import run_sync

    settings = obj.settings(db=db_path, base_url=base_url, api_key=api_key)
    show = sys.stderr.isatty() if progress is None else progress
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    result = run_sync(settings, paths or settings.projects, full=full, wait=wait,
                      progress=show, stop=stop)
    click.echo(result.summary())
    if result.skipped:
        click.echo(f"error: {len(result.skipped)} object(s) skipped: "
                   + "; ".join(result.skipped), err=True)
        sys.exit(1)


def _print_frame(frame: Any, fmt: str) -> None:
    """A DataFrame as a rich table, JSON records or CSV on stdout."""
    if fmt == "json":
        click.echo(frame.to_json(orient="records", date_format="iso"))
    elif fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    else:
        from pandas import NA as pd_na
        from rich.console import Console
        from rich.table import Table

        table = Table(show_lines=False)
        for col in frame.columns:
            table.add_column(str(col), overflow="fold")
        for row in frame.itertuples(index=False):
            table.add_row(*["" if v is None or v is pd_na else str(v) for v in row])
        Console().print(table)


def _json_option(text: str | None, what: str) -> Any:
    import json

    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"{what} must be JSON, e.g. '{{\"state\": \"finished\"}}' "
                                 f"({exc})") from exc


_FORMAT = click.Choice(["table", "json", "csv"])


@cli.command()
@click.option("--db", "db_path", default=None, help="Store file or SQLAlchemy URL.")
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="TCP port (default 8765; 0 = any free).")
@click.option("--api-key", "api_keys", multiple=True,
              help="Accepted API key (repeatable); required unless bound to loopback.")
@click.option("--export-parquet", is_flag=True,
              help="Offer finished runs' history as parquet files (parquetHistory).")
@click.option("--writable", is_flag=True,
              help="Answer write mutations (run.update(), run.upload_file(), deletes...) by "
                   "changing the store; read-only by default (config: serve.writable).")
@click.option("--workers", type=int, default=None,
              help="Serving processes sharing the port (default 1; 0 = one per CPU; "
                   "config: serve.workers).")
@click.pass_obj
def serve(obj: _Context, db_path: str | None, host: str | None, port: int | None,
          api_keys: tuple[str, ...], export_parquet: bool, writable: bool,
          workers: int | None) -> None:
    """Serve the store over W&B's GraphQL protocol (for wandb.Api, or another mirror).

    \b
    Example:
      wandb-mirror serve --db ./mirror.db --port 8765 --workers 4
      WANDB_BASE_URL=http://127.0.0.1:8765 python my_analysis.py
    """
    from .server import ServeOptions, serve_forever

    settings = obj.settings(db=db_path, serve_host=host, serve_port=port, serve_workers=workers)
    keys = list(api_keys) or list(settings.serve_api_keys) or None
    serve_forever(settings.db, settings.serve_host, settings.serve_port, api_keys=keys,
                  options=ServeOptions(export_parquet=export_parquet,
                                       writable=writable or settings.serve_writable),
                  ready=lambda srv: click.echo(srv.url, nl=True), workers=settings.serve_workers)


@cli.command()
@click.option("--db", "db_path", default=None, help="Store file or SQLAlchemy URL.")
@click.option("--format", "fmt", type=_FORMAT, default="table", show_default=True)
@click.pass_obj
def status(obj: _Context, db_path: str | None, fmt: str) -> None:
    """Per project: last sync, its age, counts and the last error.

    \b
    Example:
      wandb-mirror status --db ./mirror.db
    """
    import pandas as pd

    from .store.schema import open_store
    from .store.status import project_status

    settings = obj.settings(db=db_path)
    rows = project_status(open_store(settings.db))
    frame = pd.DataFrame([{
        "project": r.path, "runs": r.runs, "deleted": r.deleted_runs,
        "history rows": r.history_rows, "sweeps": r.sweeps, "last sync": r.last_sync_at,
        "age": _age(r.age_seconds), "last error": r.last_error} for r in rows],
        columns=["project", "runs", "deleted", "history rows", "sweeps", "last sync", "age",
                 "last error"])
    if frame.empty and fmt == "table":
        click.echo(f"{settings.db}: no projects yet; run `wandb-mirror sync ENTITY/PROJECT`")
        return
    _print_frame(frame, fmt)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


@cli.command()
@click.argument("path")
@click.option("--db", "db_path", default=None, help="Store file or SQLAlchemy URL.")
@click.option("--filters", default=None, help="W&B filter as JSON.")
@click.option("--order", default=None, help="Order, e.g. -summary_metrics.acc (default "
              "+created_at).")
@click.option("--keys", default=None, help="Comma-separated columns, e.g. config.lr,"
              "summary_metrics.loss.")
@click.option("--limit", type=int, default=None)
@click.option("--format", "fmt", type=_FORMAT, default="table", show_default=True)
@click.pass_obj
def runs(obj: _Context, path: str, db_path: str | None, filters: str | None, order: str | None,
         keys: str | None, limit: int | None, fmt: str) -> None:
    """List a project's runs from the store, filtered and ordered as on W&B.

    \b
    Example:
      wandb-mirror runs my-team/my-project --filters '{"state": "finished"}' \\
          --order -summary_metrics.acc --keys config.lr,summary_metrics.acc --limit 10
    """
    from .export import runs_frame
    from .store.schema import open_store

    settings = obj.settings(db=db_path)
    frame = runs_frame(open_store(settings.db), path, filters=_json_option(filters, "--filters"),
                       order=order, limit=limit,
                       keys=[k.strip() for k in keys.split(",")] if keys else None)
    if keys is None and fmt == "table":
        frame = frame[[c for c in frame.columns if not c.startswith(("config.", "summary_"))]]
    _print_frame(frame, fmt)


@cli.command()
@click.argument("run_path")
@click.option("--db", "db_path", default=None, help="Store file or SQLAlchemy URL.")
@click.option("--keys", default=None, help="Comma-separated keys (rows holding all of them).")
@click.option("--samples", type=int, default=None,
              help="Evenly spaced rows, first and last kept (default: all rows).")
@click.option("--stream", type=click.Choice(["default", "events"]), default="default")
@click.option("--format", "fmt", type=_FORMAT, default="csv", show_default=True)
@click.pass_obj
def history(obj: _Context, run_path: str, db_path: str | None, keys: str | None,
            samples: int | None, stream: str, fmt: str) -> None:
    """Print one run's history from the store.

    \b
    Example:
      wandb-mirror history my-team/my-project/abc123 --keys loss --samples 20 --format table
    """
    from .export import history_frame
    from .store.schema import open_store

    settings = obj.settings(db=db_path)
    frame = history_frame(open_store(settings.db), run_path, samples=samples, stream=stream,
                          keys=[k.strip() for k in keys.split(",")] if keys else None)
    _print_frame(frame, fmt)


@cli.command()
@click.argument("path")
@click.option("--db", "db_path", default=None, help="Store file or SQLAlchemy URL.")
@click.option("--to", "dest", required=True, type=click.Path(file_okay=False),
              help="Directory to write runs.<fmt> and history.<fmt> into.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet",
              show_default=True)
@click.option("--filters", default=None, help="Only runs matching this W&B filter (JSON).")
@click.option("--keys", default=None, help="Comma-separated history keys (default: all).")
@click.pass_obj
def export(obj: _Context, path: str, db_path: str | None, dest: str, fmt: str,
           filters: str | None, keys: str | None) -> None:
    """Export a project's runs table and histories to parquet or csv.

    \b
    Example:
      wandb-mirror export my-team/my-project --to ./out --format parquet
      python -c "import polars as pl; print(pl.read_parquet('out/history.parquet'))"
    """
    from .export import export_project
    from .store.schema import open_store

    settings = obj.settings(db=db_path)
    written = export_project(open_store(settings.db), path, dest, fmt=fmt,
                             filters=_json_option(filters, "--filters"),
                             keys=[k.strip() for k in keys.split(",")] if keys else None)
    for target in written:
        click.echo(str(target))


@cli.command()
@click.argument("dest", type=click.Path(dir_okay=False))
@click.option("--db", "db_path", default=None, help="Store file to copy.")
@click.pass_obj
def snapshot(obj: _Context, dest: str, db_path: str | None) -> None:
    """Write a consistent copy of the store to DEST, even while a sync or the daemon runs.

    \b
    Example:
      wandb-mirror snapshot /media/usb/mirror-2026-11-28.db --db ./mirror.db
    """
    from .store.snapshot import snapshot_store

    settings = obj.settings(db=db_path)
    if "://" in settings.db and not settings.db.startswith("sqlite:///"):
        raise click.UsageError("snapshot copies SQLite store files; use your database's own "
                               "backup tool for other URLs")
    source = settings.db.removeprefix("sqlite:///")
    target = snapshot_store(source, dest)
    click.echo(f"{target}: snapshot of {source} ({target.stat().st_size} bytes, integrity ok)")


@cli.command()
@click.option("--db", "db_path", default=None, help="Store file or SQLAlchemy URL.")
@click.option("--max-seconds", type=float, default=None, hidden=True,
              help="Exit after this long (tests).")
@click.pass_obj
def daemon(obj: _Context, db_path: str | None, max_seconds: float | None) -> None:
    """Keep the configured projects synced ([sync] projects, every [sync] interval).

    \b
    Example:
      WANDB_MIRROR_PROJECTS=my-team/my-project WANDB_MIRROR_INTERVAL=300 \\
          wandb-mirror daemon --db ./mirror.db
    """
    from .daemon import run_daemon

    settings = obj.settings(db=db_path)

    def report(path: str, result: Any) -> None:
        text = result.summary() if hasattr(result, "summary") else f"{path}: {result}"
        click.echo(text, err=not hasattr(result, "summary"))

    run_daemon(settings, on_result=report, max_seconds=max_seconds)


@cli.command()
@click.option("--runs", type=int, default=300, show_default=True, help="Synthetic runs.")
@click.option("--steps", type=int, default=2000, show_default=True, help="History steps per run.")
@click.option("--keep", type=click.Path(file_okay=False), default=None,
              help="Directory for the demo's stores (default: a new temp dir).")
@click.option("--no-wandb", is_flag=True, help="Skip the comparison with wandb.Api.")
def demo(runs: int, steps: int, keep: str | None, no_wandb: bool) -> None:
    """Build a synthetic W&B project, serve it on 127.0.0.1, sync it, query it.

    No account and no network needed. When the wandb package is installed, each query is
    timed next to the same call through wandb.Api over the protocol.

    \b
    Example:
      wandb-mirror demo
      wandb-mirror demo --runs 50 --steps 500 --keep ./demo
    """
    from .demo import run_demo

    run_demo(runs=runs, steps=steps, keep=keep, with_wandb=not no_wandb)


@cli.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
@click.pass_obj
def config_check(obj: _Context) -> None:
    """Load the configuration and print every setting (API keys masked).

    \b
    Example:
      wandb-mirror --config ./config.toml config check
    """
    from dataclasses import asdict

    settings = obj.settings()
    for key, value in asdict(settings).items():
        if key in ("api_key", "serve_api_keys") and value:
            value = "(set)" if isinstance(value, str) else f"({len(value)} set)"
        click.echo(f"{key} = {value!r}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script: MirrorError -> one line on stderr and exit 1."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="wandb-mirror", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except SyncInterrupted as exc:
        click.echo(f"stopped: {exc}", err=True)
        sys.exit(143)
    except MirrorError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # an unexpected bug: still one line unless --debug
        if debug:
            traceback.print_exc()
        click.echo(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for a "
                   "traceback)", err=True)
        sys.exit(70)


if __name__ == "__main__":  # pragma: no cover
    main()
