"""The ``wandb.Api()`` surface answered from the store (see :mod:`wandb_mirror.api.api`).

Same classes, methods, arguments and attribute names as ``wandb.apis.public`` (0.31), proven by
``tests/test_api_compat.py``, which runs the same probes against both. Deliberate differences:

- ``history(samples=N)`` samples deterministically (evenly spaced, first and last row kept);
  W&B's server samples randomly. ``samples=None`` returns every row. ``keys`` keeps W&B's
  "rows holding all keys" meaning; ``union=True`` (ours) takes rows holding any of them, also
  for ``scan_history`` and ``Runs.histories``. ``Run.history_frame()`` (ours) is the whole
  history as one DataFrame without per-row work; ``Runs.histories(keys=...)`` reads every
  run's columns with one query.
- Paginators: a negative index or an open slice (``runs[-1]``, ``runs[5:]``) loads every page
  first; upstream indexes only the pages loaded so far (or raises ``TypeError``).
- ``projects(entity)`` lists the mirrored projects only. ``default_entity`` is
  ``WANDB_ENTITY``, else the only entity in the store, else (online) the viewer's.
- ``flush()`` marks every project this Api has read as stale (the next read refreshes it);
  upstream clears its in-memory run cache. Objects are not cached per path: each ``run()``
  re-reads the store (cheap) after the freshness check.
- Nested summary values are plain dicts (upstream wraps them in ``SummarySubDict``).
- Errors: a project never mirrored while offline raises ``OfflineError`` (naming
  ``wandb-mirror sync ENTITY/PROJECT``); a missing run ``RunNotFoundError`` (a ValueError).
- Writes (``run.update()``, ``summary.update()``, ``delete()``, ``use_artifact``,
  ``log_artifact`` of an existing artifact, ``artifact.save()``/``delete()``) are sent as W&B
  mutations when online; ``serve`` is read-only, so against it they raise
  ``WriteUnsupportedError``. ``upload_file`` needs a raw-body PUT the transport lacks.
- ``scan_history(use_cache=...)`` is accepted and ignored; ``page_size`` only bounds memory.
- ``history(keys="loss")`` (not a list) raises ``ValueError``; upstream prints an error and
  returns ``[]``.
- Artifact downloads skip reference entries (as ``verify`` does) and default to
  ``./artifacts/<collection>:v<N>``.
"""
from __future__ import annotations

from .api import Api
from .artifacts import (
    Artifact,
    ArtifactCollection,
    ArtifactCollections,
    ArtifactFiles,
    ArtifactManifest,
    ArtifactType,
    ArtifactTypes,
    ArtifactVersions,
    RunArtifacts,
)
from .base import WriteUnsupportedError
from .files import File, Files
from .freshness import StaleDataWarning
from .history import HistoryScan
from .projects import Project, Projects
from .query_generator import QueryGenerator
from .reports import BetaReport, Reports
from .runs import Run, RunNotFoundError, Runs
from .sweeps import Sweep, Sweeps
from .users import User

__all__ = [
    "Api",
    "Artifact",
    "ArtifactCollection",
    "ArtifactCollections",
    "ArtifactFiles",
    "ArtifactManifest",
    "ArtifactType",
    "ArtifactTypes",
    "ArtifactVersions",
    "BetaReport",
    "File",
    "Files",
    "HistoryScan",
    "Project",
    "Projects",
    "QueryGenerator",
    "Reports",
    "Run",
    "RunArtifacts",
    "RunNotFoundError",
    "Runs",
    "StaleDataWarning",
    "Sweep",
    "Sweeps",
    "User",
    "WriteUnsupportedError",
]
