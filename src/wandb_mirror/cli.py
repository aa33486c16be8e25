"""The ``wandb-mirror`` command line: parse, call one library function, format. Nothing else."""
from __future__ import annotations

import logging
import sys
import traceback
from typing import Any

import click

from . import __version__
from .config import Settings, load_settings
from .errors import MirrorError

__all__ = ["main"]


class _Context:
    def __init__(self, debug: bool, config: str | None) -> None:
        self.debug = debug
        self.config = config

    def settings(self, **overrides: Any) -> Settings:
        return load_settings(self.config, **overrides)


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
    from .sync import run_sync

    settings = obj.settings(db=db_path, base_url=base_url, api_key=api_key)
    show = sys.stderr.isatty() if progress is None else progress
    result = run_sync(settings, paths or settings.projects, full=full, wait=wait,
                      progress=show)
    click.echo(result.summary())
    if result.skipped:
        click.echo(f"error: {len(result.skipped)} object(s) skipped: "
                   + "; ".join(result.skipped), err=True)
        sys.exit(1)


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
