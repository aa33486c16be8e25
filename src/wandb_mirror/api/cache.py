"""Read caches of the Api, valid for one "store generation".

A commit to a SQLite store in WAL mode changes the ``-wal`` file (size or mtime) and a
checkpoint changes the main file, so ``(mtime_ns, size)`` of both is a cheap token that moves
whenever anything was written -- by this Api's refreshes, the CLI, a daemon or another
process (the same rule ``serve`` uses). Stores that are not files (PostgreSQL, in-memory)
give no token and are not cached. Cached values are copied on the way out, so callers may
mutate what they get.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..store.generation import StoreGeneration

__all__ = ["GenerationCache", "StoreGeneration"]


class GenerationCache:
    """An LRU of computed values, cleared when the store generation moves.

    Args:
        generation: the store's :class:`StoreGeneration`.
        max_entries: entries kept.
    """

    def __init__(self, generation: StoreGeneration, max_entries: int = 128) -> None:
        self.generation = generation
        self.max_entries = max_entries
        self._gen: Any = None
        self._entries: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_compute(self, key: Any, compute: Callable[[], Any],
                       copy: Callable[[Any], Any] = lambda v: v) -> Any:
        """The cached value of ``key`` (computed on a miss), passed through ``copy``."""
        gen = self.generation.current()
        if gen is None:
            return compute()
        with self._lock:
            if gen != self._gen:
                self._entries.clear()
                self._gen = gen
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return copy(self._entries[key])
        self.misses += 1
        value = compute()
        with self._lock:
            if self.generation.current() == gen == self._gen:
                self._entries[key] = value
                if len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return copy(value)

    def peek(self, key: Any) -> Any:
        """The cached value of ``key`` if it is there for the current generation, else None
        (nothing is computed)."""
        gen = self.generation.current()
        if gen is None:
            return None
        with self._lock:
            if gen != self._gen or key not in self._entries:
                return None
            self._entries.move_to_end(key)
            return self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
