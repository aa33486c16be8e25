"""wandb-mirror: a local-first mirror of the Weights & Biases public API."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    SyncInterrupted,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .api import Api


def __getattr__(name: str) -> Any:
    # Api imports pandas/pyarrow and the remote layer (which imports __version__ from here):
    # load it on first use, so `import wandb_mirror` stays light and cycle-free.
    if name == "Api":
        from .api import Api

        return Api
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Api",
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
    "SyncInterrupted",
    "__version__",
]
