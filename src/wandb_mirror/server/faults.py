"""Test-only fault injection and per-operation request counters.

Faults are off unless a :class:`Faults` is given to the server (``make_server(faults=...)``,
``python -m wandb_mirror.server --faults JSON``): production never injects anything and never
exposes the ``/_mirror/*`` test endpoints.

Decision order for each request on a faultable path: a scripted outcome if any remains
(``script=["429", "500", "drop", "ok", ...]`` consumed first-in-first-out), else the
probabilities (``p_429``, ``p_5xx``, ``p_drop``) drawn from a seeded RNG. Latency is added to
every faultable request independently of the outcome.
"""
from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["FAULT_OUTCOMES", "Faults", "Stats"]

FAULT_OUTCOMES = ("ok", "429", "500", "502", "503", "drop")


@dataclass(kw_only=True)
class Faults:
    """What to inject (all probabilities in [0, 1], latencies in seconds).

    Attributes:
        p_429: probability of ``429 Too Many Requests`` with ``Retry-After: retry_after``.
        retry_after: the ``Retry-After`` value (seconds, may be fractional).
        p_5xx: probability of a 5xx, the code drawn from ``codes_5xx``.
        codes_5xx: which 5xx codes to answer.
        p_drop: probability of closing the connection without an answer.
        latency: seconds added before answering (plus up to ``latency_jitter``).
        latency_jitter: extra random latency, uniform in ``[0, latency_jitter]``.
        script: outcomes consumed in order before any probability is drawn.
        operations: only GraphQL operations with these names are faulted (None: all).
        paths: path prefixes that are faulted (GraphQL and file downloads by default).
        seed: RNG seed (deterministic sequences of outcomes).
    """

    p_429: float = 0.0
    retry_after: float = 1.0
    p_5xx: float = 0.0
    codes_5xx: tuple[int, ...] = (500, 502, 503)
    p_drop: float = 0.0
    latency: float = 0.0
    latency_jitter: float = 0.0
    script: list[str] = field(default_factory=list)
    operations: list[str] | None = None
    paths: tuple[str, ...] = ("/graphql", "/files/", "/artifacts/", "/parquet/")
    seed: int | None = 0

    def __post_init__(self) -> None:
        for name in ("p_429", "p_5xx", "p_drop"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be within [0, 1], got {value}")
        bad = [s for s in self.script if s not in FAULT_OUTCOMES]
        if bad:
            raise ValueError(f"Faults.script holds unknown outcomes {bad}; use {FAULT_OUTCOMES}")
        self.codes_5xx = tuple(int(c) for c in self.codes_5xx)
        self.paths = tuple(self.paths)
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Faults:
        """Build from a JSON-able dict (unknown keys are an error)."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}

    def applies(self, path: str, operation: str | None) -> bool:
        """Whether a request to ``path`` (running ``operation``) may be faulted."""
        if not any(path.startswith(p) for p in self.paths):
            return False
        if self.operations is not None and path.startswith("/graphql"):
            return operation in self.operations
        return True

    def draw(self) -> tuple[str, float]:
        """``(outcome, delay)`` for one request: outcome in :data:`FAULT_OUTCOMES`."""
        with self._lock:
            delay = self.latency + (self._rng.uniform(0, self.latency_jitter)
                                    if self.latency_jitter else 0.0)
            if self.script:
                return self.script.pop(0), delay
            r = self._rng.random()
            if r < self.p_429:
                return "429", delay
            r -= self.p_429
            if r < self.p_5xx:
                return str(self._rng.choice(self.codes_5xx)), delay
            r -= self.p_5xx
            if r < self.p_drop:
                return "drop", delay
            return "ok", delay


class Stats:
    """Thread-safe request counters: per GraphQL operation, per status, per injected fault."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self.operations: Counter[str] = Counter()
            self.statuses: Counter[int] = Counter()
            self.faults: Counter[str] = Counter()
            self.paths: Counter[str] = Counter()
            self.requests = 0

    def record(self, *, kind: str, operation: str | None, status: int | None,
               fault: str | None = None) -> None:
        """Count one request (``kind``: graphql, file, manifest, artifact_file, other)."""
        with self._lock:
            self.requests += 1
            self.paths[kind] += 1
            if kind == "graphql":
                self.operations[operation or "<anonymous>"] += 1
            if status is not None:
                self.statuses[status] += 1
            if fault and fault != "ok":
                self.faults[fault] += 1

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able copy of the counters."""
        with self._lock:
            return {"requests": self.requests, "operations": dict(self.operations),
                    "statuses": {str(k): v for k, v in self.statuses.items()},
                    "faults": dict(self.faults), "paths": dict(self.paths)}
