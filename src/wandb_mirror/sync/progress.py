"""Progress reporting for syncs: rich bars on a terminal, nothing otherwise."""
from __future__ import annotations

from typing import Any

__all__ = ["NullProgress", "Progress", "RichProgress", "make_progress"]


class Progress:
    """Interface: a bar per (project, phase)."""

    def start(self, key: str, description: str, total: int | None = None) -> None: ...

    def advance(self, key: str, amount: int = 1, total: int | None = None) -> None: ...

    def close(self) -> None: ...


class NullProgress(Progress):
    """Prints nothing (not a terminal, or quiet)."""


class RichProgress(Progress):
    """rich progress bars on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as _P,
                                   TextColumn, TimeElapsedColumn)

        self._p = _P(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                     TimeElapsedColumn(), console=Console(stderr=True), transient=False)
        self._tasks: dict[str, Any] = {}
        self._p.start()

    def start(self, key: str, description: str, total: int | None = None) -> None:
        if key not in self._tasks:
            self._tasks[key] = self._p.add_task(description, total=total)

    def advance(self, key: str, amount: int = 1, total: int | None = None) -> None:
        task = self._tasks.get(key)
        if task is None:
            self.start(key, key, total)
            task = self._tasks[key]
        if total is not None:
            self._p.update(task, total=total)
        self._p.advance(task, amount)

    def close(self) -> None:
        self._p.stop()


def make_progress(enabled: bool) -> Progress:
    return RichProgress() if enabled else NullProgress()
