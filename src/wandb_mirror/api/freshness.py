"""The staleness contract (DESIGN.md): when a read may touch the network, and how.

- A read of a project (its runs, a run, its history or files, sweeps, reports, artifacts)
  first asks :meth:`Freshness.project`. Online, the project is refreshed with the sync
  worker (incremental: new runs, unfinished runs, new history steps) when it was never
  mirrored, when :meth:`Freshness.flush` marked it stale, or when its last refresh is older
  than ``max_age`` seconds (``None``: never by itself). Otherwise no request is made. A
  run's history is refreshed with its project: the worker re-reads only runs that changed
  and appends only their new steps.
- The age is measured with the injectable ``clock`` against this Api's own last refresh of
  the project, else the store's ``project_sync.last_sync_at`` (a daemon's or CLI sync counts).
- Offline (``offline=True``): never a request; a project missing from the store raises
  :class:`~wandb_mirror.errors.OfflineError` naming ``wandb-mirror sync ENTITY/PROJECT``; data
  older than ``max_age`` is served with one warning giving its age.
- Upstream unreachable (or the key refused) while the project is in the store: one warning
  giving the data's age, then answers from the store; the next attempt is after ``max_age``.
"""
from __future__ import annotations

import logging
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from ..errors import AuthError, NotMirroredError, OfflineError, RemoteError, SyncError
from ..paths import sync_command
from ..store.status import project_sync_state
from ..store.values import parse_timestamp

__all__ = ["Freshness", "StaleDataWarning", "describe_age"]

log = logging.getLogger(__name__)


class StaleDataWarning(UserWarning):
    """Data is served from the store although it may be out of date."""


def describe_age(seconds: float | None) -> str:
    """``"3 minutes"``-style text for an age in seconds (``"of unknown age"`` for None)."""
    if seconds is None:
        return "of unknown age"
    seconds = max(0.0, seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds / size
            return f"{n:.0f} {unit}{'s' if round(n) != 1 else ''} old"
    return f"{seconds:.0f} seconds old"




class Freshness:
    """Decides, per project, whether a read refreshes the store first.

    Args:
        engine: the store.
        max_age: seconds a refresh stays valid; None = never refresh by itself.
        offline: never use the network.
        clock: seconds since the epoch (``time.time``), injectable for tests.
        refresh: ``refresh(entity, project)`` pulls the project (the sync worker).
        base_url: for messages.
    """

    def __init__(self, engine: Engine, *, max_age: float | None, offline: bool,
                 clock: Callable[[], float], refresh: Callable[[str, str], Any],
                 base_url: str) -> None:
        self.engine = engine
        self.max_age = max_age
        self.offline = offline
        self.clock = clock
        self._refresh = refresh
        self.base_url = base_url
        self._refreshed: dict[tuple[str, str], float] = {}
        self._read: set[tuple[str, str]] = set()
        self._stale: set[tuple[str, str]] = set()
        self._warned = False
        self._lock = threading.RLock()
        self._pks: dict[tuple[str, str], int] = {}

    # ------------------------------------------------------------------ store facts

    def _stored(self, entity: str, project: str) -> tuple[int | None, float | None]:
        """``(project pk or None, last sync time or None)`` from the store."""
        pk, last = project_sync_state(self.engine, entity, project)
        return pk, (None if last is None else parse_timestamp(last))

    def age(self, entity: str, project: str) -> float | None:
        """Seconds since the project was last refreshed (None when never)."""
        last = self._refreshed.get((entity, project))
        if last is None:
            last = self._stored(entity, project)[1]
        return None if last is None else self.clock() - last

    # ------------------------------------------------------------------ the contract

    def project(self, entity: str | None, project: str) -> int:
        """Make sure the project may be read; return its store pk.

        Raises:
            OfflineError: offline (or upstream unreachable) and never mirrored.
            NotMirroredError: the project does not exist upstream.
            AuthError: the key was refused and the project was never mirrored.
        """
        if not entity:
            raise ValueError(
                f"no entity for project {project!r}: pass 'entity/{project}', set WANDB_ENTITY, "
                "or Api(overrides={'entity': ...})")
        key = (entity, project)
        with self._lock:
            self._read.add(key)
            pk = self._pks.get(key)
            if self.offline:
                if pk is None:
                    pk, last = self._stored(entity, project)
                    if pk is None:
                        raise OfflineError(
                            f"project {entity}/{project} has not been mirrored and this Api is "
                            f"offline; run `{sync_command(entity, project)}` while "
                            f"{self.base_url} is reachable")
                    self._pks[key] = pk
                    age = None if last is None else self.clock() - last
                    if self.max_age is not None and (age is None or age > self.max_age):
                        self._warn(f"offline: answering from the store; {entity}/{project} is "
                                   f"{describe_age(age)} (refresh with "
                                   f"`{sync_command(entity, project)}`)")
                return pk
            if pk is None or key in self._stale or self._expired(key):
                pk = self._refresh_project(key, pk)
            return pk

    def _expired(self, key: tuple[str, str]) -> bool:
        if self.max_age is None:
            return False
        last = self._refreshed.get(key)
        if last is None:
            last = self._stored(*key)[1]
            if last is None:
                return True
            self._refreshed[key] = last
        return self.clock() - last > self.max_age

    def _refresh_project(self, key: tuple[str, str], pk: int | None) -> int:
        entity, project = key
        stored_pk, last = self._stored(entity, project)
        last = self._refreshed.get(key, last)  # this Api's own refresh, on its own clock
        needed = stored_pk is None or key in self._stale or self._expired(key)
        if needed:
            try:
                self._refresh(entity, project)
            except SyncError as exc:
                # Another process is syncing this store right now: its data is the freshest.
                log.info("not refreshing %s/%s: %s", entity, project, exc)
            except NotMirroredError:
                raise
            except (AuthError, RemoteError) as exc:
                self._refreshed[key] = self.clock()  # do not retry before max_age
                self._stale.discard(key)
                if stored_pk is None:
                    raise OfflineError(
                        f"project {entity}/{project} has not been mirrored and "
                        f"{self.base_url} cannot be used ({exc}); run "
                        f"`{sync_command(entity, project)}` when it is reachable") from exc
                age = None if last is None else self.clock() - last
                self._warn(f"{self.base_url} cannot be used ({exc}); answering from the "
                           f"store, {entity}/{project} is {describe_age(age)}")
                self._pks[key] = stored_pk
                return stored_pk
            self._refreshed[key] = self.clock()
            self._stale.discard(key)
            stored_pk = self._stored(entity, project)[0]
        if stored_pk is None:  # pragma: no cover - a refresh that stored nothing
            raise NotMirroredError(f"project {entity}/{project} is not in the store; run "
                                   f"`{sync_command(entity, project)}`")
        self._pks[key] = stored_pk
        return stored_pk

    def _warn(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(message, StaleDataWarning, stacklevel=_caller_level())

    def mark_stale(self, entity: str, project: str) -> None:
        """Refresh this project on its next read (after a write)."""
        with self._lock:
            self._stale.add((entity, project))

    def flush(self) -> None:
        """Mark every project this Api has read as stale."""
        with self._lock:
            self._stale |= self._read

    def read_projects(self) -> set[tuple[str, str]]:
        """Projects read so far."""
        return set(self._read)


_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside wandb_mirror."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def db_file(engine: Engine) -> Path | None:
    """The SQLite file behind an engine (None for other stores)."""
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        return Path(engine.url.database)
    return None
