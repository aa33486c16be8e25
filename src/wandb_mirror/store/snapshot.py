"""Consistent copies of a store while it is being written, through SQLite's backup API.

For carrying a mirror across an air gap: the copy is a single self-contained file (WAL folded
in), checked with ``PRAGMA integrity_check`` before it is reported done.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import StoreError

__all__ = ["snapshot_store"]


def snapshot_store(source: str | Path, dest: str | Path, *, pages_per_step: int = 4096) -> Path:
    """Copy the store file ``source`` to ``dest`` (which must not exist) consistently.

    Runs while a sync or the daemon writes: the backup restarts a step when the source
    changes under it, and readers and the writer are never blocked for long (WAL).

    Raises:
        StoreError: the source is missing, the destination exists, or the copy fails its
            integrity check (the partial copy is removed).
    """
    src, dst = Path(source), Path(dest)
    if not src.is_file():
        raise StoreError(f"no store at {src}")
    if dst.exists():
        raise StoreError(f"{dst} already exists; choose a new file name for the snapshot")
    if not dst.parent.is_dir():
        raise StoreError(f"directory {dst.parent} does not exist")
    try:
        with sqlite3.connect(src, timeout=30) as s_con:
            d_con = sqlite3.connect(dst)
            try:
                s_con.backup(d_con, pages=pages_per_step)
                d_con.execute("PRAGMA journal_mode = DELETE")
                check = d_con.execute("PRAGMA integrity_check").fetchone()[0]
            finally:
                d_con.close()
    except sqlite3.Error as exc:
        dst.unlink(missing_ok=True)
        raise StoreError(f"snapshot of {src} failed: {exc}") from exc
    if check != "ok":
        dst.unlink(missing_ok=True)
        raise StoreError(f"snapshot of {src} failed its integrity check: {check}")
    return dst
