"""Caches that make paging cheap: the ordered run keys of a listing, reused across its pages.

A client pages a listing by sending the same filters and order with a moving cursor, and asks
``runCount(filters)`` on every page. Computing the ordered list of matching run keys once and
slicing it per page turns each page into "load 50 rows by key", and ``runCount`` into a
``len()``, with pages that stay consistent while the client walks them.

Invalidation: any commit to a SQLite store in WAL mode changes the ``-wal`` file (size or
mtime), a checkpoint changes the main file, so ``(mtime_ns, size)`` of both is a cheap
"store generation"; the caches are dropped when it changes. Stores that are not files
(PostgreSQL, in-memory) are never cached.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy.orm import Session

from ..query import run_pks_statement
from ..store.generation import StoreGeneration

__all__ = ["ReplyCache", "RunListCache", "RunNodeCache", "StoreGeneration"]  # StoreGeneration: re-exported from store.generation


class _Generational:
    """Base: entries valid for one store generation, LRU-bounded."""

    def __init__(self, generation: StoreGeneration, max_entries: int) -> None:
        self.generation = generation
        self.max_entries = max_entries
        self._gen: Any = None
        self._entries: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def _current(self) -> Any:
        """The generation, clearing the entries when it moved (None: do not cache)."""
        gen = self.generation.current()
        if gen is not None and gen != self._gen:
            with self._lock:
                if gen != self._gen:
                    self._entries.clear()
                    self._gen = gen
        return gen

    def _get(self, key: Any) -> Any:
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
            return hit

    def _put(self, gen: Any, key: Any, value: Any) -> None:
        with self._lock:
            if gen == self._gen:
                self._entries[key] = value
                if len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)


class RunNodeCache(_Generational):
    """Run nodes (the request-independent part of a ``Run`` answer) by run pk.

    Cached nodes hold whole run rows (``store.rows``) or detached ``Run`` objects, and user and
    project nodes are kept here too (keyed ``("user", pk)``, ``("project", entity, name)``);
    readers must not mutate a node.
    """

    def __init__(self, generation: StoreGeneration, max_entries: int = 50_000) -> None:
        super().__init__(generation, max_entries)

    def token(self) -> Any:
        """Call once per request: the generation to pass to :meth:`put` (None: no caching)."""
        return self._current()

    def get(self, token: Any, pk: int) -> dict[str, Any] | None:
        return None if token is None else self._get(pk)

    def put(self, token: Any, pk: int, node: dict[str, Any]) -> None:
        if token is not None:
            self._put(token, pk, node)


class RunListCache(_Generational):
    """Ordered run pks per (project, filters, order), valid for one store generation."""

    def __init__(self, generation: StoreGeneration, max_entries: int = 64) -> None:
        super().__init__(generation, max_entries)

    def run_pks(self, session: Session, project_pk: int, filters: Any, order: str | None
                ) -> list[int]:
        """The ordered pks of the matching runs (computed, or from the cache).

        Raises:
            FilterError: malformed filters or order (from the query engine).
        """
        gen = self._current()
        key = (project_pk, json.dumps(filters, sort_keys=True, default=str), order or "")
        if gen is not None:
            hit = self._get(key)
            if hit is not None:
                return hit  # type: ignore[no-any-return]
        pks = list(session.scalars(run_pks_statement(project_pk, filters, order or None)))
        if gen is not None:
            self._put(gen, key, pks)
        return pks


class ReplyCache(_Generational):
    """Encoded GraphQL replies by (document, variables, operation, base URL), byte-bounded.

    Only error-free replies are kept. Identical requests within one store generation (a
    notebook re-running a query, a client re-walking a listing) are answered from memory.
    """

    def __init__(self, generation: StoreGeneration, max_bytes: int = 64 * 1024 * 1024,
                 max_reply_bytes: int = 4 * 1024 * 1024) -> None:
        super().__init__(generation, max_entries=1 << 30)
        self.max_bytes = max_bytes
        self.max_reply_bytes = max_reply_bytes
        self._bytes = 0

    @staticmethod
    def key(query: str, variables: Any, operation_name: Any, base_url: str) -> Any:
        try:
            var_text = json.dumps(variables, sort_keys=True, allow_nan=True)
        except (TypeError, ValueError):
            return None
        return (query, var_text, operation_name or "", base_url)

    def get(self, key: Any) -> tuple[Any, bytes] | None:
        """``(token, reply)``; ``reply`` is None on a miss (pass ``token`` to :meth:`put`)."""
        token = self._current()
        if token is None or key is None:
            return None, None  # type: ignore[return-value]
        return token, self._get(key)

    def put(self, token: Any, key: Any, reply: bytes) -> None:
        if token is None or key is None or len(reply) > self.max_reply_bytes:
            return
        with self._lock:
            if token != self._gen:
                return
            if not self._entries:
                self._bytes = 0
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._entries[key] = reply
            self._bytes += len(reply)
            while self._bytes > self.max_bytes and self._entries:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped)
