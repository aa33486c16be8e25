"""The exception tree of wandb-mirror.

Every error the library raises on purpose derives from :class:`MirrorError`; lower-level
errors (sqlite3, SQLAlchemy, requests) are translated at the module boundary so callers
only ever need to catch these.
"""
from __future__ import annotations

__all__ = [
    "ConfigError",
    "FilterError",
    "MirrorError",
    "NotMirroredError",
    "SchemaError",
    "StoreError",
    "SyncError",
]


class MirrorError(Exception):
    """Base class of every error raised by wandb-mirror."""


class ConfigError(MirrorError):
    """A configuration value is missing or has the wrong type."""


class StoreError(MirrorError):
    """The local store could not be read or written."""


class SchemaError(StoreError):
    """The store's schema revision is not one this version can use."""


class FilterError(MirrorError, ValueError):
    """A run filter or order string is malformed.

    Attributes:
        path: JSON-path-like location of the offending node, e.g. ``$.$and[1].config.lr``.
    """

    def __init__(self, message: str, path: str = "$") -> None:
        self.path = path
        super().__init__(f"{message} (at {path})")


class SyncError(MirrorError):
    """A sync could not complete."""


class NotMirroredError(MirrorError, LookupError):
    """The requested object is not in the store and the network may not be used."""
