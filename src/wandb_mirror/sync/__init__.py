"""The sync worker: plan what is stale, pull it, write each page with its watermark atomically."""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from ..config import Settings
from ..errors import ConfigError
from ..remote import GraphQLClient, connect
from ..store.schema import open_store
from .lease import SyncLease
from .progress import Progress, make_progress
from .worker import SyncOptions, SyncReport, sync_project

__all__ = ["SyncLease", "SyncOptions", "SyncReport", "SyncRun", "options_from", "run_sync",
           "sync_project"]


@dataclass
class SyncRun:
    """The reports of one ``sync`` invocation plus its traffic."""

    reports: list[SyncReport] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    bytes_received: int = 0
    seconds: float = 0.0

    @property
    def skipped(self) -> list[str]:
        return [s for r in self.reports for s in r.skipped]

    def summary(self) -> str:
        lines = [r.summary() for r in self.reports]
        lines.append(f"{self.requests} requests ({self.retries} retries), "
                     f"{self.bytes_received} bytes received, {self.seconds:.1f}s")
        return "\n".join(lines)


def options_from(settings: Settings, *, full: bool = False) -> SyncOptions:
    """The SyncOptions a Settings asks for."""
    return SyncOptions(full=full, history=settings.pull_history, events=settings.pull_events,
                       files=settings.pull_files, sweeps=settings.pull_sweeps,
                       reports=settings.pull_reports, artifacts=settings.pull_artifacts,
                       file_patterns=settings.file_patterns, page_size=settings.page_size,
                       history_page_size=settings.history_page_size)


def _db_file(engine: Engine) -> Path | None:
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        return Path(engine.url.database)
    return None


def run_sync(
    settings: Settings,
    paths: Sequence[str],
    *,
    full: bool = False,
    wait: float = 0.0,
    progress: Progress | bool = False,
    client: GraphQLClient | None = None,
    engine: Engine | None = None,
    stop: threading.Event | None = None,
) -> SyncRun:
    """Sync ``paths`` (``entity/project``) into ``settings.db`` under the sync lease.

    Raises:
        ConfigError: no paths given.
        SyncError: another sync holds the store.
        RemoteError, NotMirroredError: the server could not be used.
    """
    if not paths:
        raise ConfigError("nothing to sync: give ENTITY/PROJECT paths or set [sync] projects")
    engine = engine or open_store(settings.db)
    client = client or connect(settings.base_url, settings.api_key, timeout=settings.timeout,
                               max_retries=settings.max_retries,
                               max_in_flight=settings.max_in_flight)
    bar = progress if isinstance(progress, Progress) else make_progress(bool(progress))
    out = SyncRun()
    started = time.monotonic()
    stats = client.stats
    before = (stats.requests, stats.retries, stats.bytes_received)
    try:
        with SyncLease(_db_file(engine), wait=wait):
            for path in paths:
                out.reports.append(sync_project(engine, client, path,
                                                options_from(settings, full=full), bar, stop))
    finally:
        bar.close()
        out.requests = stats.requests - before[0]
        out.retries = stats.retries - before[1]
        out.bytes_received = stats.bytes_received - before[2]
        out.seconds = time.monotonic() - started
    return out


