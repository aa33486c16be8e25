"""Shared world for the API tests: a synth store, a served copy, the real client, comparators."""
from __future__ import annotations

import math
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from wandb_mirror.config import Settings

WANDB_DIRS = ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR",
              "WANDB_ARTIFACT_DIR")
API_KEY = "x" * 40


@contextmanager
def wandb_env(tmp: Path) -> Iterator[None]:
    """Environment for the real client: no telemetry, every directory under ``tmp``."""
    saved = {k: os.environ.get(k) for k in (*WANDB_DIRS, "WANDB_ERROR_REPORTING",
                                            "WANDB_SILENT", "WANDB_API_KEY", "WANDB_ENTITY",
                                            "WANDB_PROJECT", "WANDB_BASE_URL")}
    try:
        for k in WANDB_DIRS:
            path = tmp / k.lower()
            path.mkdir(parents=True, exist_ok=True)
            os.environ[k] = str(path)
        os.environ["WANDB_ERROR_REPORTING"] = "false"
        os.environ["WANDB_SILENT"] = "true"
        for k in ("WANDB_API_KEY", "WANDB_ENTITY", "WANDB_PROJECT", "WANDB_BASE_URL"):
            os.environ.pop(k, None)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """TimeoutError in the main thread after ``seconds`` (SIGALRM): a hung real client (wandb-core)
    fails its test instead of stalling the suite."""
    def expire(_sig: int, _frame: Any) -> None:
        raise TimeoutError(f"test exceeded {seconds}s (wandb client hang?)")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


class Clock:
    """A settable clock starting at a fixed epoch second (``Api(clock=...)``)."""

    def __init__(self, now: float = 1.9e9) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def mirror_settings(db: Path | str, base_url: str, **kw: Any) -> Settings:
    """Settings for a mirror Api that never reads the environment or a config file."""
    return Settings(db=str(db), base_url=base_url.rstrip("/"), api_key=API_KEY, **kw)


@dataclass
class World:
    entity: str
    project: str
    run_ids: list[str]
    sweep_names: list[str]
    artifact_names: list[str]
    tmp: Path

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}"


def same(a: Any, b: Any, where: str = "$") -> None:
    """Assert deep equality with identical types; NaN equals NaN; DataFrames exactly."""
    if isinstance(a, pd.DataFrame) or isinstance(b, pd.DataFrame):
        assert isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame), where
        pd.testing.assert_frame_equal(a, b, check_dtype=True, obj=where)
        return
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__} ({a!r} vs {b!r})"
    if isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or a == b, f"{where}: {a!r} != {b!r}"
    elif isinstance(a, dict):
        assert list(a) == list(b) or set(a) == set(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: len {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"
