"""The sync lease: one sync writes a store at a time.

For a store file, an exclusive ``flock`` on ``<store>.sync-lock`` (released by the kernel if
the process dies, so a kill -9 never leaves a stale lease). The holder's pid is written into
the file so the second sync can say who holds it.
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from ..errors import SyncError

__all__ = ["SyncLease"]


class SyncLease:
    """Context manager holding the sync lease of a store.

    Args:
        db_path: the store file (None for non-file stores: no lease is taken).
        wait: seconds to wait for a running sync to finish before giving up.
    """

    def __init__(self, db_path: str | Path | None, *, wait: float = 0.0) -> None:
        self.path = Path(f"{db_path}.sync-lock") if db_path else None
        self.wait = wait
        self._fd: int | None = None

    def __enter__(self) -> SyncLease:
        if self.path is None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + max(0.0, self.wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                    os.close(fd)
                    raise SyncError(
                        f"another sync (pid {holder}) is writing this store; wait for it to "
                        f"finish, or pass --wait SECONDS (lease file {self.path})") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
