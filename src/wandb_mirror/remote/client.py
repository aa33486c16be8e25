"""GraphQL over the transport: execute documents, page connections, fetch files."""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from ..errors import GraphQLError, RemoteError
from .transport import Transport

__all__ = ["GraphQLClient"]


class GraphQLClient:
    """A W&B GraphQL client.

    Args:
        transport: the :class:`~.transport.Transport` (holds base URL, key, retries, stats).
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.url = f"{transport.base_url}/graphql"

    @property
    def stats(self):  # type: ignore[no-untyped-def]
        return self.transport.stats

    def execute(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run one document; return ``data``.

        Raises:
            GraphQLError: the answer holds ``errors``.
            RemoteError: transport failure, or an answer without ``data``.
        """
        body = {"query": query, "variables": dict(variables or {})}
        answer = self.transport.post_json(self.url, body)
        if not isinstance(answer, dict):
            raise RemoteError(f"{self.url} answered {type(answer).__name__}, not a JSON object",
                              url=self.url)
        errors = answer.get("errors")
        if errors:
            messages = [e.get("message", json.dumps(e)) if isinstance(e, dict) else str(e)
                        for e in errors]
            raise GraphQLError(messages, url=self.url)
        data = answer.get("data")
        if not isinstance(data, dict):
            raise RemoteError(f"{self.url} answered without data", url=self.url)
        return data

    def pages(
        self,
        query: str,
        variables: Mapping[str, Any],
        path: tuple[str, ...],
        *,
        first: int = 50,
    ) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Page a relay connection; yield ``(data, nodes)`` per page.

        ``path`` leads from ``data`` to the connection (e.g. ``("project", "runs")``); the
        document must take ``$cursor`` and ``$first`` and select ``edges { node cursor }`` and
        ``pageInfo { endCursor hasNextPage }``. A null object on the path ends the listing.
        """
        cursor: str | None = None
        for _ in range(1_000_000):  # bounded: a server that never ends paging is a bug
            data = self.execute(query, {**variables, "cursor": cursor, "first": first})
            conn: Any = data
            for key in path:
                conn = conn.get(key) if isinstance(conn, dict) else None
            if not isinstance(conn, dict):
                yield data, []
                return
            edges = conn.get("edges") or []
            nodes = [e["node"] for e in edges if isinstance(e, dict) and e.get("node")]
            yield data, nodes
            info = conn.get("pageInfo") or {}
            if not info.get("hasNextPage") or not edges:
                return
            cursor = edges[-1].get("cursor") or info.get("endCursor")
            if cursor is None:
                raise RemoteError(f"{self.url}: hasNextPage without a cursor at {'.'.join(path)}")
        raise RemoteError(f"{self.url}: paging of {'.'.join(path)} did not end")

    def get_bytes(self, url: str) -> bytes:
        """Download a file URL (credentials only go to the base URL's host)."""
        return self.transport.get_bytes(url)

    def download(self, url: str, sink: BinaryIO) -> None:
        """Stream a file URL into a binary file object."""
        self.transport.download(url, sink)
