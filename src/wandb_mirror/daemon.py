"""The sync daemon: apscheduler wiring only.

One interval job per configured project (coalesced, one instance at a time, jittered). Jobs
run one after another on a single worker thread, under the same sync lease a manual
``wandb-mirror sync`` takes, so they never interleave with it. A failing project backs off
(interval doubled, up to :data:`MAX_BACKOFF`), and its error shows in ``wandb-mirror status``.
SIGINT/SIGTERM ask the running sync to stop after the page in hand; it commits and the daemon
exits.
"""
from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from .config import Settings
from .errors import ConfigError, MirrorError, SyncError, SyncInterrupted
from .remote import connect
from .store.schema import open_store
from .sync import run_sync

__all__ = ["MAX_BACKOFF", "Daemon", "run_daemon"]

log = logging.getLogger(__name__)

MAX_BACKOFF = 3600.0


class Daemon:
    """Schedules syncs of ``settings.projects`` every ``settings.interval`` seconds."""

    def __init__(self, settings: Settings, *, on_result: Callable[[str, Any], None] | None = None
                 ) -> None:
        if not settings.projects:
            raise ConfigError("the daemon needs projects to sync: set [sync] projects in the "
                              "config or WANDB_MIRROR_PROJECTS=entity/project,...")
        if settings.interval <= 0:
            raise ConfigError(f"[sync] interval must be > 0 seconds, got {settings.interval}")
        self.settings = settings
        self.stop = threading.Event()
        self.engine = open_store(settings.db)
        self.client = connect(settings.base_url, settings.api_key, timeout=settings.timeout,
                              max_retries=settings.max_retries,
                              max_in_flight=settings.max_in_flight)
        self.on_result = on_result or (lambda path, result: None)
        self.failures: dict[str, int] = {}
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=timezone.utc)
        self._last_full: dict[str, datetime] = {}

    def _interval(self, path: str) -> float:
        n = self.failures.get(path, 0)
        return min(MAX_BACKOFF, self.settings.interval * (2**n)) if n else self.settings.interval

    def sync_once(self, path: str) -> None:
        """One scheduled sync of ``path`` (never raises: outcomes go to logs and ``status``)."""
        if self.stop.is_set():
            return
        now = datetime.now(timezone.utc)
        last_full = self._last_full.get(path)
        full = last_full is None or (now - last_full).total_seconds() >= \
            self.settings.full_reconcile_interval
        try:
            result = run_sync(self.settings, [path], full=full and last_full is not None,
                              client=self.client, engine=self.engine, stop=self.stop)
        except SyncInterrupted:
            log.info("sync of %s stopped for shutdown", path)
            return
        except SyncError as exc:  # a manual sync holds the lease: just try next time
            log.info("sync of %s skipped: %s", path, exc)
            self.on_result(path, exc)
            return
        except MirrorError as exc:
            self.failures[path] = self.failures.get(path, 0) + 1
            delay = self._interval(path)
            log.warning("sync of %s failed (%s); next try in %.0fs", path, exc, delay)
            self._reschedule(path, delay)
            self.on_result(path, exc)
            return
        if last_full is None or full:
            self._last_full[path] = now
        if self.failures.pop(path, 0):
            self._reschedule(path, self.settings.interval)
        log.info("%s", result.summary())
        self.on_result(path, result)

    def _reschedule(self, path: str, seconds: float) -> None:
        job = self.scheduler.get_job(path)
        if job is not None:
            job.reschedule("interval", seconds=seconds, jitter=self._jitter(seconds))

    @staticmethod
    def _jitter(seconds: float) -> int:
        return max(0, int(seconds * 0.1))

    def start(self) -> None:
        now = datetime.now(timezone.utc)
        for i, path in enumerate(self.settings.projects):
            self.scheduler.add_job(self.sync_once, "interval", args=[path], id=path, name=path,
                                   seconds=self.settings.interval,
                                   jitter=self._jitter(self.settings.interval),
                                   next_run_time=now + timedelta(seconds=0.1 * i))
        self.scheduler.start()

    def shutdown(self) -> None:
        """Stop the running sync after its current page, then stop the scheduler."""
        self.stop.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.client.transport.close()
        self.engine.dispose()


def run_daemon(settings: Settings, *, on_result: Callable[[str, Any], None] | None = None,
               max_seconds: float | None = None) -> None:
    """Run the daemon until SIGINT/SIGTERM (or ``max_seconds``); what the CLI calls."""
    daemon = Daemon(settings, on_result=on_result)
    done = threading.Event()

    def _signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: finishing the current page and exiting", signum)
        done.set()

    old = {sig: signal.signal(sig, _signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        daemon.start()
        done.wait(max_seconds)
    finally:
        daemon.shutdown()
        for sig, handler in old.items():
            signal.signal(sig, handler)
