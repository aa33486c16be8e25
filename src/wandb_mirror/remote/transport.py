"""HTTP transport to a W&B server: retries with backoff and jitter, Retry-After, bounded concurrency.

The only module (with :mod:`.client`) that imports ``requests``. The session, the sleep function
and the random source are injectable so tests can run the real transport against a real server
on 127.0.0.1 without waiting out real back-offs.
"""
from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import urlparse

import requests

from .. import __version__
from ..errors import AuthError, RateLimited, RemoteError

__all__ = ["DEFAULT_MAX_RETRIES", "Transport", "TransportStats", "USER_AGENT"]

log = logging.getLogger(__name__)

USER_AGENT = f"wandb-mirror/{__version__} (+https://github.com/wandb-mirror)"
DEFAULT_MAX_RETRIES = 8
DEFAULT_TIMEOUT = (10.0, 30.0)  # connect, read
BACKOFF_MIN, BACKOFF_MAX = 0.5, 30.0
RETRY_AFTER_CAP = 120.0
NO_RETRY = frozenset({400, 401, 403, 404, 409, 410, 413, 422, 501})


@dataclass
class TransportStats:
    """Counters of one transport: requests sent, retries, bytes received, by status."""

    requests: int = 0
    retries: int = 0
    bytes_received: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, status: int | None, nbytes: int, retry: bool) -> None:
        with self._lock:
            self.requests += 1
            self.bytes_received += nbytes
            if retry:
                self.retries += 1
            if status is not None:
                self.statuses[status] = self.statuses.get(status, 0) + 1


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Transport:
    """Sends requests with W&B's auth, retrying what is worth retrying.

    Args:
        base_url: the server, e.g. ``https://api.wandb.ai``; credentials are only sent to it.
        api_key: sent as HTTP Basic ``api:<key>``.
        session: a ``requests.Session`` (injectable).
        timeout: ``(connect, read)`` seconds.
        max_retries: retries on 429, 5xx (not 501) and connection errors.
        max_in_flight: requests allowed at once across threads.
        sleep, rng: injectable for tests.
        backoff_min, backoff_max: exponential back-off bounds in seconds (jittered x1-1.25);
            a ``Retry-After`` answer overrides them (capped at two minutes).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_in_flight: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        backoff_min: float = BACKOFF_MIN,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._base = urlparse(self.base_url)
        self.api_key = api_key
        self.session = session or requests.Session()
        self.session.headers.setdefault("User-Agent", USER_AGENT)
        self.session.headers["User-Agent"] = USER_AGENT
        self.timeout = timeout
        self.max_retries = max_retries
        self._slots = threading.BoundedSemaphore(max(1, max_in_flight))
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.backoff_min, self.backoff_max = backoff_min, backoff_max
        self.stats = TransportStats()

    def close(self) -> None:
        self.session.close()

    def _auth_for(self, url: str) -> tuple[str, str] | None:
        if not self.api_key:
            return None
        u = urlparse(url)
        same = (u.scheme, u.netloc) == (self._base.scheme, self._base.netloc)
        if same and u.path.startswith(self._base.path or "/"):
            return ("api", self.api_key)
        return None

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based), with jitter."""
        base = min(self.backoff_max, self.backoff_min * (2**attempt))
        return base * self._rng.uniform(1.0, 1.25)

    def request(self, method: str, url: str, *, json: Any = None, data: bytes | None = None,
                headers: Mapping[str, str] | None = None,
                sink: BinaryIO | None = None) -> requests.Response:
        """Send a request; return the 2xx response or raise a RemoteError subclass.

        ``json`` sends a JSON body, ``data`` raw bytes (an upload; sent again as a whole on
        each retry). With ``sink``, a 2xx body is streamed into it (rewound first, so a retried
        download never leaves a partial copy) instead of being held in memory.
        """
        if json is not None and data is not None:
            raise ValueError("send either json or data, not both")
        auth = self._auth_for(url)
        attempt = 0
        while True:
            status: int | None = None
            wait: float | None = None
            try:
                with self._slots:
                    resp = self.session.request(method, url, json=json, data=data, auth=auth,
                                                headers=dict(headers or {}), timeout=self.timeout,
                                                stream=sink is not None)
                    if sink is not None and 200 <= resp.status_code < 300:
                        sink.seek(0)
                        sink.truncate()
                        size = 0
                        for block in resp.iter_content(1 << 20):
                            sink.write(block)
                            size += len(block)
                        nbytes = size
                    else:
                        nbytes = len(resp.content)  # read the body inside the slot
            except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                    requests.exceptions.InvalidSchema) as exc:
                raise RemoteError(f"{method} {url}: not a usable URL ({exc}); the base URL must "
                                  "look like https://api.wandb.ai", url=url) from exc
            except requests.RequestException as exc:
                self.stats.record(None, 0, attempt > 0)
                problem = f"{type(exc).__name__}: {exc}"
            else:
                status = resp.status_code
                self.stats.record(status, nbytes, attempt > 0)
                if 200 <= status < 300:
                    return resp
                problem = f"HTTP {status}: {_error_text(resp)}"
                if status in (401, 403):
                    raise AuthError(
                        f"{self._base.netloc} rejected the API key (HTTP {status}) for "
                        f"{method} {url}. Set WANDB_API_KEY, or add a netrc entry for "
                        f"{self._base.netloc} (e.g. `wandb login --host {self.base_url}`).",
                        status=status, url=url)
                if status in NO_RETRY or (400 <= status < 500 and status not in (408, 425, 429)):
                    raise RemoteError(f"{method} {url} failed: {problem}", status=status, url=url)
                wait = _retry_after(resp.headers.get("Retry-After"))
            if attempt >= self.max_retries:
                cls = RateLimited if status == 429 else RemoteError
                raise cls(f"{method} {url} failed after {attempt + 1} attempts: {problem}",
                          status=status, url=url)
            delay = min(wait, RETRY_AFTER_CAP) if wait is not None else self.backoff(attempt)
            # Quiet for the odd blip; say so once a server keeps failing (a user waiting on a
            # CLI sees why it is slow).
            log.log(logging.WARNING if attempt >= 2 else logging.INFO,
                    "retrying %s %s in %.1fs (attempt %d of %d): %s", method, url, delay,
                    attempt + 2, self.max_retries + 1, problem)
            self._sleep(delay)
            attempt += 1

    def post_json(self, url: str, body: Mapping[str, Any]) -> Any:
        resp = self.request("POST", url, json=body)
        try:
            return resp.json()
        except ValueError as exc:
            raise RemoteError(f"POST {url} answered with a body that is not JSON: "
                              f"{resp.text[:200]!r}", status=resp.status_code, url=url) from exc

    def get_bytes(self, url: str) -> bytes:
        return self.request("GET", url).content

    def put_bytes(self, url: str, data: bytes,
                  headers: Mapping[str, str] | None = None) -> requests.Response:
        """``PUT`` raw bytes (an upload URL), retried like every request."""
        return self.request("PUT", url, data=bytes(data), headers=headers)

    def download(self, url: str, sink: BinaryIO) -> None:
        """Stream a file URL into ``sink`` (retried like every request)."""
        self.request("GET", url, sink=sink)


def _error_text(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300].strip() or resp.reason or ""
    if isinstance(body, dict):
        errs = body.get("errors")
        if isinstance(errs, list) and errs:
            return "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e)
                             for e in errs)
        if body.get("error"):
            return str(body["error"])
    return str(body)[:300]
