"""The exception tree of wandb-mirror.

Every error the library raises on purpose derives from :class:`MirrorError`; lower-level
errors (sqlite3, SQLAlchemy, requests) are translated at the module boundary so callers
only ever need to catch these.
"""
from __future__ import annotations

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
    "SyncInterrupted",
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


class SyncInterrupted(SyncError):
    """A sync was asked to stop; everything written so far is committed and consistent."""


class NotMirroredError(MirrorError, LookupError):
    """The requested object is not in the store and the network may not be used."""


class RemoteError(MirrorError):
    """The W&B server could not be reached or answered with an error.

    Attributes:
        status: the HTTP status, or None when there was no HTTP answer.
        url: the URL requested.
    """

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None) -> None:
        self.status = status
        self.url = url
        super().__init__(message)


class AuthError(RemoteError):
    """The server rejected the API key (HTTP 401/403)."""


class RateLimited(RemoteError):
    """The server kept answering 429 after every retry."""


class GraphQLError(RemoteError):
    """The server answered with GraphQL ``errors``; ``messages`` holds each message."""

    def __init__(self, messages: list[str], *, url: str | None = None) -> None:
        self.messages = messages
        super().__init__("; ".join(messages) or "GraphQL error", url=url)


class OfflineError(NotMirroredError):
    """The data is not in the store and the mirror is offline."""
