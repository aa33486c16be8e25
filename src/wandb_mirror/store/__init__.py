"""The local store: engine, models, schema revisions, value index and history layout."""
from __future__ import annotations

from .engine import make_engine, session_scope
from .schema import open_store

__all__ = ["make_engine", "open_store", "session_scope"]
