"""Schema revisions: locate the shipped alembic migrations, upgrade, and refuse newer stores.

The migrations live in the top-level ``migrations/`` folder of the source tree and are
installed as the ``wandb_mirror.migrations`` package, so an installed copy can upgrade its
own database (``wandb-mirror db upgrade``).
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from ..errors import SchemaError
from .engine import make_engine, translate_db_error

__all__ = [
    "alembic_config", "current_revision", "downgrade", "head_revision", "migrations_dir",
    "open_store", "upgrade",
]


def migrations_dir() -> Path:
    """Filesystem path of the shipped alembic scripts."""
    return Path(str(resources.files("wandb_mirror.migrations")))


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def head_revision() -> str:
    """The newest revision this version of wandb-mirror knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision stamped in the database, or None for an empty/unversioned one."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise translate_db_error(exc, f"reading the schema revision of {engine.url}") from exc


def _run(engine: Engine, fn, revision: str) -> None:  # type: ignore[no-untyped-def]
    cfg = alembic_config(engine)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            fn(cfg, revision)
    except SQLAlchemyError as exc:
        raise translate_db_error(exc, f"migrating {engine.url} to {revision}") from exc


def _check_known(engine: Engine) -> str | None:
    current = current_revision(engine)
    if current is None:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
        if tables & {"runs", "projects"}:
            raise SchemaError(
                f"{engine.url.database or engine.url} holds wandb-mirror tables but no schema "
                "revision; it was not created by wandb-mirror's migrations. Use a new store file."
            )
        return None
    script = ScriptDirectory.from_config(alembic_config())
    try:
        known = script.get_revision(current)
    except Exception:  # alembic raises several types for unknown ids
        known = None
    if known is None:
        raise SchemaError(
            f"the store {engine.url.database or engine.url} is at schema revision {current!r}, "
            f"which this wandb-mirror does not know (newest known: {head_revision()!r}); it was "
            "written by a newer version. Upgrade wandb-mirror (pip install -U wandb-mirror) to "
            "use it; the store was left untouched."
        )
    return current


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Upgrade the database to ``revision`` (head by default); returns the new revision.

    Raises:
        SchemaError: the database was written by a newer version (left untouched).
    """
    _check_known(engine)
    _run(engine, command.upgrade, revision)
    return current_revision(engine) or ""


def downgrade(engine: Engine, revision: str) -> str | None:
    """Downgrade the database to ``revision`` (``base`` removes every table)."""
    _check_known(engine)
    _run(engine, command.downgrade, revision)
    return current_revision(engine)


def open_store(target: str | Path | Engine) -> Engine:
    """Open a store, creating or upgrading its schema to head; refuse newer databases.

    Args:
        target: a file path, SQLAlchemy URL or Engine.

    Raises:
        SchemaError: the database was written by a newer wandb-mirror.
        StoreError: it cannot be opened.
    """
    engine = make_engine(target)
    current = _check_known(engine)
    if current != head_revision():
        _run(engine, command.upgrade, "head")
    return engine
