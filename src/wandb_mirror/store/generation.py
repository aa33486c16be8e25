"""A cheap token that moves whenever a store file is written, for read caches.

A commit to a SQLite store in WAL mode changes the ``-wal`` file (size or mtime) and a
checkpoint changes the main file, so ``(inode, mtime_ns, size)`` of both moves whenever
anything was written -- by a sync, the daemon, the CLI, a serve worker or another process.
Almost: file times advance in clock ticks (1-4 ms), and a WAL restarted after a checkpoint is
rewritten from its start, so two commits within one tick can leave both files looking the
same. The token therefore also holds SQLite's ``PRAGMA data_version`` read on a connection of
its own that never writes (opened like the store's, so
no read-only mode quirks): it changes whenever any other connection commits.

Stores that are not files (PostgreSQL, in-memory) give no token (None), and callers must not
cache.
"""
from __future__ import annotations

import os
import sqlite3
import threading
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
        self._watcher: sqlite3.Connection | None = None
        self._watcher_key: Any = None  # (pid, inode): reopened after a fork or a file swap
        self._lock = threading.Lock()

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
                out.append((st.st_ino, st.st_mtime_ns, st.st_size))
        out.append(self._data_version(out[0][0] if out[0] else None))
        return tuple(out)

    def _data_version(self, inode: int | None) -> int | None:
        if inode is None:
            return None
        key = (os.getpid(), inode)
        with self._lock:
            try:
                if self._watcher is None or self._watcher_key != key:
                    if self._watcher is not None and self._watcher_key[0] == key[0]:
                        self._watcher.close()  # (a connection from before a fork is left alone)
                    self._watcher = sqlite3.connect(self.paths[0], check_same_thread=False)
                    self._watcher_key = key
                return int(self._watcher.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.Error:
                self._watcher = None
                return None
