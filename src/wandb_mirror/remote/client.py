"""GraphQL over the transport: execute documents, page connections, fetch files."""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from ..errors import GraphQLError, RemoteError
from .transport import Transport

__all__ = ["GraphQLClient", "Listing"]


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
    ) -> Listing:
        """Page a relay connection; iterating yields ``(data, nodes)`` per page.

        ``path`` leads from ``data`` to the connection (e.g. ``("project", "runs")``); the
        document must take ``$cursor`` and ``$first`` and select ``edges { node cursor }`` and
        ``pageInfo { endCursor hasNextPage }``. A null object on the path ends the listing.
        The returned :class:`Listing` says afterwards whether it was complete.
        """
        return Listing(self, query, variables, path, first)

    def get_bytes(self, url: str) -> bytes:
        """Download a file URL (credentials only go to the base URL's host)."""
        return self.transport.get_bytes(url)

    def download(self, url: str, sink: BinaryIO) -> None:
        """Stream a file URL into a binary file object."""
        self.transport.download(url, sink)


class Listing:
    """The pages of one relay connection (:meth:`GraphQLClient.pages`).

    ``complete`` becomes True only when the server answered a page with no next page. A null
    object on the path, a next page promised but not given, an error or a stop part-way leave
    it False: a caller must not conclude from such a listing that something is gone.
    """

    def __init__(self, client: GraphQLClient, query: str, variables: Mapping[str, Any],
                 path: tuple[str, ...], first: int) -> None:
        self._client = client
        self._query, self._variables, self._path, self._first = query, variables, path, first
        self.complete = False

    def __iter__(self) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
        self.complete = False
        client, path = self._client, self._path
        cursor: str | None = None
        for _ in range(1_000_000):  # bounded: a server that never ends paging is a bug
            data = client.execute(self._query, {**self._variables, "cursor": cursor,
                                                "first": self._first})
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
            if not info.get("hasNextPage"):
                self.complete = True
                return
            if not edges:
                return
            cursor = edges[-1].get("cursor") or info.get("endCursor")
            if cursor is None:
                raise RemoteError(f"{client.url}: hasNextPage without a cursor at {'.'.join(path)}")
        raise RemoteError(f"{client.url}: paging of {'.'.join(path)} did not end")
