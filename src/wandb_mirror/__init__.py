"""wandb-mirror: a local-first mirror of the Weights & Biases public API."""
from __future__ import annotations

from .errors import (
    AuthError,
    ConfigError,
    FilterError,
    GraphQLError,
    MirrorError,
    NotMirroredError,
    OfflineError,
    RateLimited,
    RemoteError,
    SchemaError,
    StoreError,
    SyncError,
)

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "ConfigError",
    "FilterError",
    "GraphQLError",
    "MirrorError",
    "NotMirroredError",
    "OfflineError",
    "RateLimited",
    "RemoteError",
    "SchemaError",
    "StoreError",
    "SyncError",
    "__version__",
]
