"""A cheap token that moves whenever a store file is written, for read caches.

A commit to a SQLite store in WAL mode changes the ``-wal`` file (size or mtime) and a
checkpoint changes the main file, so ``(mtime_ns, size)`` of both moves whenever anything was
written -- by a sync, the daemon, the CLI or another process. Stores that are not files
(PostgreSQL, in-memory) give no token (None), and callers must not cache.
"""
from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine

__all__ = ["StoreGeneration"]


class StoreGeneration:
    """A token that changes whenever the store's files change (None: cannot tell)."""

    def __init__(self, engine: Engine) -> None:
        db = engine.url.database if engine.dialect.name == "sqlite" else None
        if db and db != ":memory:" and not db.startswith("file:"):
            self.paths: tuple[str, ...] | None = (db, db + "-wal")
        else:
            self.paths = None

    def current(self) -> tuple[Any, ...] | None:
        if self.paths is None:
            return None
        out: list[Any] = []
        for path in self.paths:
            try:
                st = os.stat(path)
            except OSError:
                out.append(None)
            else:
                out.append((st.st_mtime_ns, st.st_size))
        return tuple(out)
