"""Talking to a W&B server: transport (auth, retries, Retry-After), GraphQL client, documents."""
from __future__ import annotations

from typing import Any

from .client import GraphQLClient
from .transport import USER_AGENT, Transport, TransportStats

__all__ = ["USER_AGENT", "GraphQLClient", "Transport", "TransportStats", "connect"]


def connect(base_url: str, api_key: str | None, *, timeout: float = 30.0, max_retries: int = 8,
            max_in_flight: int = 4, **transport_options: Any) -> GraphQLClient:
    """A GraphQL client for ``base_url`` with the given key and retry policy.

    ``transport_options`` go to :class:`Transport` (``backoff_min``, ``sleep``, ...).
    """
    return GraphQLClient(Transport(base_url, api_key, timeout=(min(10.0, timeout), timeout),
                                   max_retries=max_retries, max_in_flight=max_in_flight,
                                   **transport_options))
