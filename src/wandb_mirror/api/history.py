"""Run history reads: sampled ``history()``, exact ``scan_history()``, full frames, many runs.

Semantics (``reference/wandb-protocol.md`` §3.6-3.7), answered by :mod:`wandb_mirror.store.history`:

- ``history(samples, keys)`` returns at most ``samples`` rows. Sampling is **deterministic**
  (evenly spaced, always keeping the first and last row) where W&B's server samples randomly;
  with ``keys`` only rows holding **all** of ``[x_axis] + keys`` (W&B's semantics), each row
  with just those keys; ``union=True`` (ours) takes rows holding **any** of ``keys``.
- ``scan_history(keys, page_size, min_step, max_step)``: every row with
  ``min_step <= _step < max_step`` in step order (``max_step`` clamped to the last step + 1).
- ``Run.history_frame()`` (ours): the whole history as one DataFrame without per-row Python work.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..store import history as H
from ..store.engine import session_scope

if TYPE_CHECKING:
    from .runs import Run

__all__ = ["READ_PAGE_ROWS", "HistoryScan", "check_keys", "frame_from_rows", "sampled_rows"]

READ_PAGE_ROWS = 4 * H.CHUNK_ROWS
"""Rows ``scan_history`` reads from the store at a time, whatever ``page_size`` says."""


def check_keys(keys: Any, *, strict: bool) -> list[str] | None:
    """Validate a ``keys`` argument (a list of strings or None).

    Raises:
        ValueError: ``strict`` and ``keys`` is not a list of strings (``scan_history``
            raises; upstream ``history`` logs an error and returns ``[]``).
    """
    if keys is None:
        return None
    if not isinstance(keys, list):
        raise ValueError("keys must be specified in a list")
    if not all(isinstance(k, str) for k in keys):
        raise ValueError("keys argument must be a list of strings")
    return keys


def sampled_rows(run: Run, *, samples: int | None, keys: Sequence[str] | None, x_axis: str,
                 stream: str, union: bool) -> list[dict[str, Any]]:
    """Rows of ``run.history`` as dicts (see the module docstring)."""
    api = run._api
    api._project_pk(run.entity, run.project)
    key = ("history", run._pk, tuple(keys) if keys else None, x_axis, stream, union, samples)
    return api._results.get_or_compute(  # type: ignore[no-any-return]
        key, lambda: _read_sampled(run, samples=samples, keys=keys, x_axis=x_axis,
                                   stream=stream, union=union),
        copy=lambda rows: [dict(r) for r in rows])


def _read_sampled(run: Run, *, samples: int | None, keys: Sequence[str] | None, x_axis: str,
                  stream: str, union: bool) -> list[dict[str, Any]]:
    api = run._api
    with session_scope(api._engine, f"reading history of {'/'.join(run.path)}") as s:
        if keys:
            wanted = list(dict.fromkeys([x_axis, *keys]))
            if union:
                rows = H.sample_rows(s, run._pk, keys=[k for k in keys], samples=_n(samples),
                                     stream=stream, union=True)
                return [{k: r[k] for k in wanted if k in r} for r in rows]
            rows = H.sample_rows(s, run._pk, keys=wanted, samples=_n(samples), stream=stream)
            return [{k: r[k] for k in wanted if k in r} for r in rows]
        return H.sample_rows(s, run._pk, samples=_n(samples), stream=stream)


def _n(samples: int | None) -> int:
    return 2**62 if samples is None else int(samples)


def frame_from_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """``DataFrame.from_records(rows)``, as upstream builds ``history(pandas=True)``."""
    return pd.DataFrame.from_records(rows)


class HistoryScan(Iterator[dict[str, Any]]):
    """Iterator over every history row of a run in a step range, in step order.

    Attributes:
        run: the run.
        min_step: first step (inclusive).
        page_size: rows read per page.
        keys: the keys asked for (None = all).
    """

    def __init__(self, run: Run, *, min_step: int, max_step: int, keys: list[str] | None,
                 page_size: int, union: bool = False) -> None:
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        self.run = run
        self.min_step = min_step
        self._stop_step = max_step
        self.keys = keys
        self.page_size = page_size
        self.union = union
        self._rows_iter: Iterator[dict[str, Any]] | None = None

    @property
    def max_step(self) -> int:
        """The highest step this scan can yield."""
        return self._stop_step - 1

    def __iter__(self) -> Iterator[dict[str, Any]]:
        # A C-level chain over pages: a `for` loop costs no Python call per row.
        return itertools.chain.from_iterable(self._page_iter())

    def _page_iter(self) -> Iterator[list[dict[str, Any]]]:
        keys = self.keys
        if keys and not self.union and "_step" not in keys:
            keys = ["_step", *keys]
        if self.min_step >= self._stop_step:
            return iter(())
        # page_size only bounds how many rows are held at once (upstream: per request); reading
        # whole chunks at a time is several times faster than small pages.
        return H.iter_pages(self.run._api._engine, self.run._pk, keys=keys or None,
                            page_size=max(self.page_size, READ_PAGE_ROWS),
                            min_step=self.min_step, max_step=self._stop_step, union=self.union)

    def __next__(self) -> dict[str, Any]:
        if self._rows_iter is None:
            self._rows_iter = iter(self)
        return next(self._rows_iter)

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        """(ours) The same rows as lists of up to ``max(page_size, READ_PAGE_ROWS)`` rows."""
        return self._page_iter()

    def __repr__(self) -> str:
        return (f"<HistoryScan {'/'.join(self.run.path)} steps [{self.min_step}, "
                f"{self._stop_step}) keys={self.keys}>")
