"""``User``: a W&B user as seen on runs, reports and projects (attributes from GraphQL)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..store.models import User as UserRow
from .base import Attrs

__all__ = ["User", "user_attrs"]


def user_attrs(row: UserRow | None) -> dict[str, Any] | None:
    """The GraphQL ``user`` object of a stored user (None for no user)."""
    if row is None:
        return None
    return {"id": row.upstream_id, "name": row.name, "username": row.username,
            "email": row.email, "photoUrl": row.photo_url}


class User(Attrs):
    """A user. Attributes come from the GraphQL object: ``username``, ``name``, ``email``,
    ``entity``, ``photo_url`` ... (``wandb.apis.public.User``)."""

    def __init__(self, attrs: Mapping[str, Any]) -> None:
        super().__init__(attrs)

    def __repr__(self) -> str:
        return f"<User {self._attrs.get('username') or self._attrs.get('name')}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, User) and other._attrs.get("username") == self._attrs.get(
            "username")

    def __hash__(self) -> int:
        return hash(self._attrs.get("username"))
