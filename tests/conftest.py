"""Shared fixtures: a migrated store, a seeded synthetic store, and served stores on 127.0.0.1.

Every server a fixture starts is stopped at teardown, whether the test passed or not.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wandb_mirror import synth
from wandb_mirror.server import MirrorServer, make_server
from wandb_mirror.store import open_store

SYNTH_ARGS: dict[str, Any] = dict(entity="synth", project="demo", runs=60, history_steps=120,
                                  history_keys=6, system_events=6, seed=0)
"""The shape of the shared synthetic store (small enough to build in seconds)."""


@pytest.fixture
def migrated_store(tmp_path: Path):
    """An empty store at head revision (function scope)."""
    engine = open_store(tmp_path / "store.db")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def synth_store(tmp_path_factory: pytest.TempPathFactory):
    """``(engine, SynthResult)`` of a synthetic project (:data:`SYNTH_ARGS`); read-only, shared."""
    path = tmp_path_factory.mktemp("synth") / "synth.db"
    engine = open_store(path)
    result = synth.generate(engine, **SYNTH_ARGS)
    yield engine, result
    engine.dispose()


@pytest.fixture(scope="session")
def served_synth(synth_store) -> Iterator[MirrorServer]:
    """The synthetic store served on 127.0.0.1 (test mode on, no faults); stopped at the end."""
    engine, _ = synth_store
    server = make_server(engine, test_mode=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def serve() -> Iterator[Callable[..., MirrorServer]]:
    """Factory: ``serve(engine_or_path, **make_server_kwargs)`` -> a started server.

    Every server it made is stopped at teardown.
    """
    started: list[MirrorServer] = []

    def _serve(target: Any, **kwargs: Any) -> MirrorServer:
        server = make_server(target, **kwargs).start()
        started.append(server)
        return server

    try:
        yield _serve
    finally:
        for server in started:
            server.stop()
