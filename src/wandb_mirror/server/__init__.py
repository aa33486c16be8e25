"""``wandb-mirror serve``: a W&B-compatible GraphQL endpoint (and file endpoints) over a store.

Unmodified ``wandb.Api()`` code works against it (``WANDB_BASE_URL=<url>`` or
``wandb.Api(overrides={"base_url": url})``), a mirror can sync from another mirror through it,
and the sync worker's tests use it as their real HTTP upstream.

Entry points: :func:`make_server` (in-process, background thread) and :func:`serve_forever`
(what the CLI calls); ``python -m wandb_mirror.server --db PATH --port N`` prints the URL as its
first line of stdout.
"""
from __future__ import annotations

import gc
import ipaddress
import logging
import os
import secrets
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from ..errors import ConfigError
from ..store.schema import open_store
from .cache import ReplyCache, RunListCache, RunNodeCache, StoreGeneration
from .faults import Faults, Stats
from .http import MirrorHTTPServer, key_is_well_formed
from .nodes import ServeOptions
from .schema import mirror_schema
from .workers import run_workers

__all__ = ["Faults", "MirrorServer", "ServeOptions", "Stats", "make_server", "serve_forever"]

log = logging.getLogger("wandb_mirror.server")

GC_YOUNG_THRESHOLD = 20_000
"""Young-generation threshold of a serving process (CPython's default: 700)."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MirrorServer:
    """A running (or ready) serve instance.

    Attributes:
        url: ``http://host:port`` clients use as ``base_url``.
        engine: the store it reads.
        options: :class:`ServeOptions`.
        faults: the :class:`Faults` injected (None: none); may be replaced while running.
        stats: request counters (:class:`Stats`), always kept, exposed over HTTP only in
            test mode.
        test_mode: whether ``/_mirror/*`` endpoints answer.
        api_keys: accepted keys, or None (loopback only) for "any well-formed key".
    """

    def __init__(self, engine: Engine, host: str, port: int, *, api_keys: Iterable[str] | None,
                 faults: Faults | None, options: ServeOptions, test_mode: bool) -> None:
        self.engine = engine
        self.options = options
        self.faults = faults
        self.stats = Stats()
        self.test_mode = test_mode
        self.api_keys = tuple(api_keys) if api_keys is not None else None
        generation = StoreGeneration(engine)
        self.run_lists = RunListCache(generation)
        self.run_nodes = RunNodeCache(generation)
        self.replies = ReplyCache(generation) if options.reply_cache else None
        self._httpd = MirrorHTTPServer((host, port), self)
        bound_host, bound_port = self._httpd.server_address[:2]
        shown = bound_host if ":" not in str(bound_host) else f"[{bound_host}]"
        if shown in ("0.0.0.0", "[::]"):
            shown = "127.0.0.1"
        self.url = f"http://{shown}:{bound_port}"
        self.host, self.port = str(bound_host), int(bound_port)
        self._thread: threading.Thread | None = None

    def start(self) -> MirrorServer:
        """Serve in a background (daemon) thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever,
                                            kwargs={"poll_interval": 0.1},
                                            name=f"wandb-mirror-serve:{self.port}", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` (or KeyboardInterrupt)."""
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._httpd.server_close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket (idempotent, bounded by ``timeout``)."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout)
            self._thread = None
        self.close()

    def close(self) -> None:
        """Close the listening socket."""
        self._httpd.server_close()

    def become_worker(self, index: int, parent_pid: int) -> None:
        """This process is worker ``index`` of ``parent_pid`` (see :mod:`.workers`)."""
        self._httpd.become_worker(index, parent_pid)

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def make_server(
    engine_or_path: Engine | str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    api_keys: Iterable[str] | None = None,
    faults: Faults | dict[str, Any] | None = None,
    options: ServeOptions | None = None,
    test_mode: bool | None = None,
) -> MirrorServer:
    """Create a server over a store (not yet serving: call ``.start()`` or ``.serve_forever()``).

    Args:
        engine_or_path: an Engine, a store path or a SQLAlchemy URL (opened and migrated).
        host: interface to bind; ``127.0.0.1`` by default.
        port: TCP port; 0 picks a free one (read it from ``.url``).
        api_keys: accepted API keys. None on a loopback address means "any well-formed key"
            (>= 40 ``[\\w-]`` chars, as the wandb client requires); required elsewhere.
        faults: test-only fault injection (a :class:`Faults` or its dict form); None: off.
        options: :class:`ServeOptions` (viewer entity, parquet export, page cap, writable).
        test_mode: expose ``/_mirror/*`` (stats, fault control); default: on iff ``faults``
            is given.

    Raises:
        ConfigError: bound to a non-loopback address without ``api_keys``, or a configured
            key is malformed.
    """
    keys = list(api_keys) if api_keys is not None else None
    if keys is not None:
        bad = [k for k in keys if not key_is_well_formed(k)]
        if bad or not keys:
            raise ConfigError("serve: API keys must be at least 40 characters of [A-Za-z0-9_-] "
                              f"({len(bad)} configured key(s) are not)" if bad else
                              "serve: the list of API keys is empty")
    elif not _is_loopback(host):
        raise ConfigError(
            f"serve: binding {host} exposes the mirror beyond this machine; configure the API "
            "keys it accepts (serve.api_keys / --api-key), or bind 127.0.0.1")
    if isinstance(faults, dict):
        faults = Faults.from_dict(faults)
    opts = options or ServeOptions()
    if not opts.secret:
        opts.secret = secrets.token_bytes(32)
    engine = engine_or_path if isinstance(engine_or_path, Engine) else open_store(engine_or_path)
    return MirrorServer(engine, host, port, api_keys=keys, faults=faults, options=opts,
                        test_mode=bool(faults) if test_mode is None else test_mode)


def serve_forever(
    db: Engine | str | Path,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    api_keys: Iterable[str] | None = None,
    faults: Faults | dict[str, Any] | None = None,
    options: ServeOptions | None = None,
    test_mode: bool | None = None,
    ready: Any = None,
    workers: int = 1,
) -> None:
    """Serve a store until interrupted (what ``wandb-mirror serve`` runs).

    ``ready``, when given, is called with the :class:`MirrorServer` once the socket is bound
    (the CLI prints ``server.url``). ``workers``: serving processes sharing the socket (0: one
    per CPU; see :mod:`.workers`). Other arguments: see :func:`make_server`.

    Raises:
        ConfigError: as :func:`make_server`; ``workers`` < 0; several workers with test mode
            (its counters and faults are per process) or where ``os.fork`` does not exist.
    """
    workers = check_workers(workers, test_mode=bool(faults) if test_mode is None else test_mode)
    server = make_server(db, host, port, api_keys=api_keys, faults=faults, options=options,
                         test_mode=test_mode)
    if ready is not None:
        ready(server)
    log.info("serving %s at %s%s", server.engine.url.render_as_string(hide_password=True),
             server.url, " (writable)" if server.options.writable else "")
    # This process now only serves. Build the schema before the first request, and move what
    # imports and start-up allocated (~150k objects, never garbage) out of the collector's
    # view: otherwise every full collection re-scans them, ~0.1-0.2 s each on a cold walk.
    mirror_schema(server.options.writable)
    gc.collect()
    gc.freeze()  # (before a fork this also keeps the workers' collections off shared pages)
    # A page allocates ~1,000 short-lived containers, almost all freed by reference counting;
    # at the default threshold (700) the young generation is collected every page and what
    # is mid-build gets promoted and re-scanned by older collections (~0.5 ms a cold page).
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    if workers > 1:
        run_workers(server, workers)
        return
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def check_workers(workers: int, *, test_mode: bool) -> int:
    """The number of serving processes ``workers`` asks for (0: one per CPU).

    Raises:
        ConfigError: negative, test mode with several, or no ``os.fork`` for several.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"serve: workers must be a whole number >= 0 (0 = one per CPU), "
                          f"got {workers!r}")
    count = workers or os.cpu_count() or 1
    if count > 1 and test_mode:
        raise ConfigError(f"serve: test mode (fault injection, /_mirror/stats) counts requests "
                          f"per process; run it with one worker, not {count}")
    if count > 1 and not hasattr(os, "fork"):
        raise ConfigError(f"serve: several workers need os.fork, which this platform lacks; "
                          f"use --workers 1 (asked for {count})")
    return count
