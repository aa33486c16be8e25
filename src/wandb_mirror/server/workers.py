"""Several serving processes on one socket: ``wandb-mirror serve --workers N``.

Why: one Python process answers on one core at a time (the GIL); a first walk of a project
costs ~3-5 ms of CPU a page, so a single process tops out near 200-300 pages/s whatever the
machine. ``N`` forked workers share the listening socket the parent bound, each with its own
read connections and caches; the kernel hands each new connection to one of them.

What stays correct across processes:
- cache invalidation: every cache keys on the store generation (the store files' size and
  mtime), which a write by any process changes;
- signed URLs: the signing secret is made before the fork, so any worker verifies another's;
- writes (``--writable``): SQLite serialises writers between processes.

The parent only supervises: it restarts a worker that dies (giving up if workers keep dying
within a second of starting) and, on SIGTERM/SIGINT, stops every worker and waits for them
(bounded). A worker whose parent disappears (``kill -9``) notices within a poll interval and
exits, so no orphan keeps the port.
"""
from __future__ import annotations

import logging
import os
import signal
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import MirrorServer

__all__ = ["run_workers"]

log = logging.getLogger("wandb_mirror.server")

QUICK_DEATH_S = 1.0
"""A worker that exits sooner than this after starting counts as failing to start."""
MAX_QUICK_DEATHS = 5
STOP_TIMEOUT_S = 5.0


class _Stop(Exception):
    pass


def _raise_stop(_signum: int, _frame: Any) -> None:
    raise _Stop


def _worker(server: MirrorServer, index: int, parent: int) -> None:
    """The child's life: serve until told to stop or orphaned, then leave without returning
    into the parent's code (``os._exit``)."""
    code = 0
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us (Ctrl-C hits both)
        server.engine.dispose(close=False)  # never reuse a connection opened before the fork
        server.become_worker(index, parent)
        server.serve_forever()
    except SystemExit:
        pass  # orphaned: the parent is gone
    except BaseException:  # noqa: BLE001 - reported, and the parent restarts us
        log.exception("serve worker %d failed", index)
        code = 1
    finally:
        os._exit(code)


def _reap(children: dict[int, tuple[int, float]], timeout: float) -> None:
    """Wait up to ``timeout`` for ``children`` to exit, then kill the rest."""
    deadline = time.monotonic() + timeout
    while children and time.monotonic() < deadline:
        pid, _ = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            time.sleep(0.02)
        else:
            children.pop(pid, None)
    for pid in list(children):
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        children.pop(pid, None)


def run_workers(server: MirrorServer, workers: int) -> None:
    """Fork ``workers`` processes serving ``server``'s bound socket; supervise them until
    SIGTERM/SIGINT, then stop them all. Returns when every worker is gone.

    Raises:
        RuntimeError: workers keep dying right after they start (see the log for why).
    """
    parent = os.getpid()
    server.engine.dispose()  # no SQLite connection may cross the fork
    children: dict[int, tuple[int, float]] = {}  # pid -> (worker index, start time)
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGINT)}

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            _worker(server, index, parent)
        children[pid] = (index, time.monotonic())

    quick_deaths = 0
    try:
        for index in range(workers):
            spawn(index)
        log.info("serving with %d worker processes: %s", workers,
                 ", ".join(str(pid) for pid in children))
        while children:
            pid, status = os.waitpid(-1, 0)
            if pid not in children:
                continue
            index, started = children.pop(pid)
            quick_deaths = quick_deaths + 1 if time.monotonic() - started < QUICK_DEATH_S else 0
            log.warning("serve worker %d (pid %d) exited (%s); starting a new one", index, pid,
                        _describe(status))
            if quick_deaths >= MAX_QUICK_DEATHS:
                raise RuntimeError(f"serve workers keep exiting right after they start "
                                   f"({quick_deaths} in a row); see the log above")
            spawn(index)
    except (_Stop, KeyboardInterrupt):
        log.info("stopping %d serve workers", len(children))
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        _reap(children, STOP_TIMEOUT_S)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.close()


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
