"""Shared pieces of the resolvers: request context, cursors, connections, URLs, common nodes.

Resolvers hand graphql-core plain dicts (the default resolver reads ``dict[field]``); the
store rows a nested resolver needs travel in private keys (``_row``, ``_project``...) that no
GraphQL field can name.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from graphql import GraphQLError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store.models import Project, User

__all__ = [
    "DEFAULT_PAGE_SIZE", "RequestContext", "ServeOptions", "connection", "decode_cursor",
    "encode_cursor", "page_window", "parse_json_arg", "project_node", "signed_what", "user_node",
]

DEFAULT_PAGE_SIZE = 50


@dataclass(kw_only=True)
class ServeOptions:
    """What a served store answers beyond the stored data.

    Attributes:
        viewer_entity: ``viewer.entity`` (the client's default entity); default: the entity of
            the first project in the store, else ``"mirror"``.
        export_parquet: offer finished runs' history as parquet files in ``parquetHistory``
            (default: "nothing exported", so clients page history over GraphQL).
        max_page_size: upper bound on ``first`` of any connection.
        secret: key for the signatures in file URLs (random per server by default).
        reply_cache: keep encoded replies of identical requests for the current store
            generation (any commit to the store empties it).
        writable: answer the write mutations (``upsertBucket``, ``deleteRun``,
            ``createRunFiles`` + ``PUT`` uploads, ...) by changing the served store
            (:mod:`.mutations`); off by default: a read-only server has no ``Mutation`` type.
    """

    viewer_entity: str | None = None
    export_parquet: bool = False
    max_page_size: int = 10_000
    secret: bytes = b""
    reply_cache: bool = True
    writable: bool = False


@dataclass
class RequestContext:
    """Per-request state: one read session, the base URL clients reached us at, caches."""

    session: Session
    base_url: str
    options: ServeOptions
    run_lists: Any = None  # a cache.RunListCache shared by the server's requests, or None
    run_nodes: Any = None  # a cache.RunNodeCache, or None
    node_token: Any = None  # this request's generation token for run_nodes
    users: dict[int, User | None] = field(default_factory=dict)
    user_nodes: dict[int | None, dict[str, Any]] = field(default_factory=dict)
    projects: dict[int, dict[str, Any]] = field(default_factory=dict)

    # ------------------------------------------------------------------ urls
    def sign(self, path: str) -> str:
        """Signature of a file path, so unauthenticated clients may fetch URLs we handed out."""
        return hmac.new(self.options.secret, path.encode(), hashlib.sha256).hexdigest()[:32]

    def signed_url(self, *segments: str, method: str = "GET") -> str:
        """An absolute URL to ``segments``, signed for ``method`` (a download URL does not
        allow an upload: ``PUT`` signatures cover the method too)."""
        path = "/" + "/".join(quote(s, safe="") for s in segments[:-1])
        path += "/" + quote(segments[-1], safe="/")
        return f"{self.base_url}{path}?sig={self.sign(signed_what(method, path))}"

    def run_file_url(self, entity: str, project: str, run_id: str, name: str) -> str:
        return self.signed_url("files", entity, project, run_id, name)

    def upload_url(self, entity: str, project: str, run_id: str, name: str) -> str:
        """Where a client ``PUT``s the bytes of a run file (``createRunFiles``)."""
        return self.signed_url("files", entity, project, run_id, name, method="PUT")

    def manifest_url(self, artifact_id: str) -> str:
        return self.signed_url("artifacts", "manifest", artifact_id, "wandb_manifest.json")

    def artifact_file_url(self, artifact_id: str, path: str) -> str:
        return self.signed_url("artifacts", "file", artifact_id, path)

    def parquet_url(self, entity: str, project: str, run_id: str) -> str:
        return self.signed_url("parquet", entity, project, run_id, "history.parquet")

    # ------------------------------------------------------------------ lookups
    def shared(self, key: Any) -> Any:
        """A node kept across requests for this store generation (None: not kept)."""
        return self.run_nodes.get(self.node_token, key) if self.run_nodes is not None else None

    def share(self, key: Any, node: Any) -> None:
        """Keep ``node`` for later requests of this store generation (it must not change)."""
        if self.run_nodes is not None:
            self.run_nodes.put(self.node_token, key, node)

    def load_users(self, pks: Sequence[int | None]) -> None:
        """Make the ``User`` nodes of a page of runs available, with at most one query."""
        missing = set()
        for pk in pks:
            if pk is None or pk in self.user_nodes:
                continue
            shared = self.shared(("user", pk))
            if shared is not None:
                self.user_nodes[pk] = shared
            else:
                missing.add(pk)
        if missing:
            for user in self.session.scalars(select(User).where(User.pk.in_(missing))):
                self.users[user.pk] = user
            for pk in missing:
                self.users.setdefault(pk, None)
                self.user_node(pk)

    def user(self, pk: int | None) -> User | None:
        if pk is None:
            return None
        if pk not in self.users:
            self.users[pk] = self.session.get(User, pk)
        return self.users[pk]

    def user_node(self, pk: int | None) -> dict[str, Any]:
        """The ``User`` node of ``pk`` (``{}`` for none): one shared dict per user and store
        generation; readers must not mutate it."""
        node = self.user_nodes.get(pk)
        if node is None:
            node = self.shared(("user", pk))
            if node is None:
                node = user_node(self.user(pk)) or {}
                self.share(("user", pk), node)
            self.user_nodes[pk] = node
        return node

    def project(self, row: Project) -> dict[str, Any]:
        if row.pk not in self.projects:
            self.projects[row.pk] = project_node(row, self.user(row.owner_pk))
        return self.projects[row.pk]


def signed_what(method: str, path: str) -> str:
    """The text a URL signature covers: the path for downloads, ``"<METHOD> <path>"`` else."""
    return path if method in ("GET", "HEAD") else f"{method} {path}"


def user_node(user: User | None) -> dict[str, Any] | None:
    """A ``User`` node (``apiKeys``/``teams`` empty: a mirror has no such data)."""
    if user is None:
        return None
    return {"__typename": "User", "id": user.upstream_id or _b64(f"User:{user.username}"),
            "name": user.name, "username": user.username, "email": user.email,
            "photoUrl": user.photo_url, "admin": False, "flags": None, "entity": user.username,
            "deletedAt": None, "accountType": None,
            "apiKeys": {"edges": []}, "teams": {"edges": []}}


def project_node(row: Project, owner: User | None) -> dict[str, Any]:
    """A ``Project`` node; ``_row`` carries the store row for nested resolvers."""
    return {
        "__typename": "Project",
        "id": row.upstream_id or _b64(f"Project:v1:{row.name}:{row.entity}"),
        "internalId": row.internal_id or str(row.pk),
        "name": row.name,
        "entityName": row.entity,
        "entity": {"id": _b64(f"Entity:{row.entity}"), "name": row.entity},
        "createdAt": row.created_at,
        "isBenchmark": bool(row.is_benchmark),
        "readOnly": row.read_only,
        "description": row.description,
        "user": user_node(owner) if owner is not None else None,
        "_row": row,
    }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def encode_cursor(position: int) -> str:
    """Opaque cursor of the item at absolute ``position`` of a listing."""
    return _b64(f"cursor:{position}")


def decode_cursor(cursor: str | None) -> int:
    """Offset where a page after ``cursor`` starts (0 for no cursor).

    Raises:
        GraphQLError: the cursor is not one of ours.
    """
    if not cursor:
        return 0
    try:
        kind, _, pos = base64.b64decode(cursor.encode(), validate=True).decode().partition(":")
        if kind != "cursor":
            raise ValueError(kind)
        return int(pos) + 1
    except (ValueError, UnicodeDecodeError) as exc:
        raise GraphQLError(f"invalid cursor {cursor!r}: pass an endCursor from this server") from exc


def page_window(ctx: RequestContext, first: int | None, after: str | None,
                default: int = DEFAULT_PAGE_SIZE) -> tuple[int, int]:
    """``(offset, limit)`` of a page from ``first``/``after``, ``first`` capped by the options."""
    limit = default if first is None else first
    if limit < 0:
        raise GraphQLError(f"first must be >= 0, got {first}")
    return decode_cursor(after), min(limit, ctx.options.max_page_size)


def connection(items: Sequence[Any], offset: int, limit: int, node: Callable[[Any], Any],
               *, total: int | None = None, edge_extra: Callable[[Any], dict[str, Any]] | None = None
               ) -> dict[str, Any]:
    """A relay connection from ``items`` fetched with ``limit + 1`` (the extra one = more pages)."""
    page = list(items[:limit])
    edges = []
    for i, item in enumerate(page):
        edge = {"node": node(item), "cursor": encode_cursor(offset + i)}
        if edge_extra is not None:
            edge.update(edge_extra(item))
        edges.append(edge)
    return {
        "edges": edges,
        "pageInfo": {"__typename": "PageInfo",
                     "startCursor": edges[0]["cursor"] if edges else None,
                     "endCursor": edges[-1]["cursor"] if edges else None,
                     "hasNextPage": len(items) > limit, "hasPreviousPage": offset > 0},
        "totalCount": total,
    }


def parse_json_arg(value: Any, name: str) -> Any:
    """A ``JSONString`` argument (a JSON text, or already an object) parsed; None stays None.

    Raises:
        GraphQLError: the text is not JSON.
    """
    if value is None or not isinstance(value, (str, bytes)):
        return value
    if not value.strip():
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        raise GraphQLError(f"argument {name} is not valid JSON: {exc}") from exc
