"""The ``wandb.Api()`` surface answered from the store (see :mod:`wandb_mirror.api.api`)."""
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
