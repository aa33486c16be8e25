"""The HTTP side of ``wandb-mirror serve``: stdlib ``ThreadingHTTPServer``, auth, file endpoints.

Endpoints:

- ``POST /graphql``: W&B-compatible GraphQL (Basic auth, user ``api``);
- ``GET /files/<entity>/<project>/<run>/<name>``: run file bytes from the content cache;
- ``GET /artifacts/manifest/<artifact id>/wandb_manifest.json``: an artifact's manifest;
- ``GET /artifacts/file/<artifact id>/<path>``: an artifact file's bytes;
- ``GET /parquet/<entity>/<project>/<run>/history.parquet``: history export (option);
- ``PUT /files/<entity>/<project>/<run>/<name>``: with ``ServeOptions.writable``, store the
  body as that run file (the ``uploadUrl`` of ``createRunFiles``, signed for ``PUT``);
- ``POST /sdk/otel/v1/*``: 404, which tells wandb-core there is no telemetry proxy;
- ``GET /healthz``; and, in test mode only, ``GET /_mirror/stats``, ``POST /_mirror/stats/reset``,
  ``POST /_mirror/faults``.

File URLs handed out in GraphQL replies carry a signature (``?sig=``), so clients that fetch
them without credentials (the wandb artifact downloader) are served; anything else needs a key.
Keys are never logged.
"""
from __future__ import annotations

import base64
import hmac
import io
import json
import logging
import os
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, parse_qs

from sqlalchemy.orm import Session

from ..store import artifacts as store_artifacts
from ..store import files as store_files
from ..store import runs as store_runs
from .encode import encode_reply
from .faults import Faults
from .nodes import RequestContext, signed_what
from .schema import execute_request, prepare

if TYPE_CHECKING:
    from . import MirrorServer

__all__ = ["MirrorHTTPServer", "MirrorRequestHandler", "key_is_well_formed"]

log = logging.getLogger("wandb_mirror.server")

_KEY = re.compile(r"[\w-]+")
MAX_BODY = 64 * 1024 * 1024
# NaN/Infinity go out as W&B sends them (the tokens); replies hold no cycles, so skip that check.
_ENCODE = json.JSONEncoder(allow_nan=True, separators=(",", ":"), check_circular=False).encode


def key_is_well_formed(key: str) -> bool:
    """The client's own rule: ``[\\w-]+`` and at least 40 characters (or a JWT ``a.b.c``)."""
    if key.count(".") == 2 and all(part and _KEY.fullmatch(part) for part in key.split(".")):
        return True
    return len(key) >= 40 and _KEY.fullmatch(key) is not None


class MirrorHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its :class:`MirrorServer`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], mirror: MirrorServer) -> None:
        self.mirror = mirror
        self.worker: int | None = None  # index among ``--workers`` processes, None: the only one
        # One GraphQL request computes at a time in a process. Threads computing together
        # hand the GIL back and forth at every SQLite call and socket operation: with four
        # clients a cold page cost 7.2-7.7 ms of CPU instead of 4.3-4.6 (and 150 instead of
        # 210-220 pages/s). Reading requests and sending replies stay concurrent; for
        # parallel computing, run several processes (``--workers``).
        self.compute = threading.Lock()
        self.parent_pid: int | None = None
        super().__init__(address, MirrorRequestHandler)

    def become_worker(self, index: int, parent_pid: int) -> None:
        """In a forked worker: share the listening socket without blocking in ``accept`` (a
        sibling may take the connection ``select`` announced), and watch for the parent."""
        self.worker, self.parent_pid = index, parent_pid
        self.socket.setblocking(False)

    def service_actions(self) -> None:
        """Between requests (every poll interval): a worker whose parent is gone exits."""
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            log.warning("serve worker %s: the supervising process is gone; exiting", self.worker)
            raise SystemExit(0)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-reply are routine (timeouts, injected drops): log quietly."""
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("client %s went away: %s", client_address, exc)
        else:
            log.exception("error while serving %s", client_address)


class _Reply(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class MirrorRequestHandler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 keep-alive so clients reuse it across pages."""

    protocol_version = "HTTP/1.1"
    server_version = "wandb-mirror"
    server: MirrorHTTPServer

    # ------------------------------------------------------------------ plumbing
    def setup(self) -> None:
        super().setup()
        # Without TCP_NODELAY, Nagle's algorithm holds a reply's last small segment until the
        # client's delayed ACK: ~40 ms on keep-alive answers.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.connection.gettimeout() == 0.0:  # accepted from a worker's non-blocking socket
            self.connection.setblocking(True)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    @property
    def mirror(self) -> MirrorServer:
        return self.server.mirror

    def _send(self, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.server.worker is not None:
            self.send_header("X-Wandb-Mirror-Worker", str(self.server.worker))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.command == "HEAD":
            self.end_headers()
        elif self.request_version == "HTTP/0.9":  # no headers at all
            self.wfile.write(body)
        else:  # end_headers() then write(body) is two sends per reply; this is one
            self._headers_buffer.append(b"\r\n")
            self._headers_buffer.append(body)
            self.flush_headers()

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, _ENCODE(obj).encode("ascii"), "application/json", headers)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send_json(status, {"errors": [{"message": message}], "error": message}, headers)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise _Reply(413, f"request body of {length} bytes is larger than {MAX_BODY}")
        return self.rfile.read(length) if length > 0 else b""

    def _base_url(self) -> str:
        host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        return f"http://{host}"

    def _api_key(self) -> str | None:
        header = self.headers.get("Authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, key = base64.b64decode(value.strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            return key if user == "api" else None
        if scheme.lower() == "bearer":
            return value.strip() or None
        return None

    def _authorized(self) -> bool:
        key = self._api_key()
        if key is None:
            return False
        allowed = self.mirror.api_keys
        if allowed is None:
            return key_is_well_formed(key)
        return any(hmac.compare_digest(key, k) for k in allowed)

    def _signed(self, path: str, query: dict[str, list[str]], ctx: RequestContext,
                method: str = "GET") -> bool:
        sig = (query.get("sig") or [""])[0]
        return bool(sig) and hmac.compare_digest(sig, ctx.sign(signed_what(method, path)))

    def _context(self, session: Session) -> RequestContext:
        return RequestContext(session=session, base_url=self._base_url(),
                              options=self.mirror.options, run_lists=self.mirror.run_lists,
                              run_nodes=self.mirror.run_nodes,
                              node_token=self.mirror.run_nodes.token())

    def _fault(self, path: str, operation: str | None, kind: str) -> bool:
        """Apply an injected fault; True when the request was answered (or dropped) by it."""
        faults: Faults | None = self.mirror.faults
        if faults is None or not faults.applies(path, operation):
            return False
        outcome, delay = faults.draw()
        if delay > 0:
            time.sleep(delay)
        if outcome == "ok":
            return False
        self.mirror.stats.record(kind=kind, operation=operation,
                                 status=None if outcome == "drop" else int(outcome), fault=outcome)
        if outcome == "drop":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        if outcome == "429":
            self._error(429, "rate limited (injected fault)",
                        {"Retry-After": f"{faults.retry_after:g}"})
        else:
            self._error(int(outcome), f"injected fault {outcome}")
        return True

    # ------------------------------------------------------------------ verbs
    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        path = urlsplit(self.path).path
        try:
            if path.rstrip("/") == "/graphql":
                self._graphql()
            elif path.startswith("/sdk/otel/"):
                self._read_body()
                self._error(404, "no OpenTelemetry proxy here")
            elif path.startswith("/_mirror/") and self.mirror.test_mode:
                self._test_endpoint(path, self._read_body())
            else:
                self._read_body()
                self._error(404, f"no such endpoint: POST {path}")
        except _Reply as reply:
            self._error(reply.status, reply.message, reply.headers)
        except Exception:  # noqa: BLE001 - a server must answer, and say why in its log
            log.exception("internal error on POST %s", path)
            self._error(500, "internal server error; see the wandb-mirror serve log")

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        path = parts.path
        try:
            if path == "/healthz":
                self._send(200, b"ok\n", "text/plain")
            elif path.startswith("/_mirror/") and self.mirror.test_mode:
                self._test_endpoint(path, b"")
            elif path.startswith(("/files/", "/artifacts/", "/parquet/")):
                self._download(path, parse_qs(parts.query))
            elif path.rstrip("/") == "/graphql":
                self._error(405, "use POST /graphql")
            else:
                self._error(404, f"no such endpoint: GET {path}")
        except _Reply as reply:
            self._error(reply.status, reply.message, reply.headers)
        except Exception:  # noqa: BLE001
            log.exception("internal error on GET %s", path)
            self._error(500, "internal server error; see the wandb-mirror serve log")

    do_HEAD = do_GET

    def do_PUT(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        path = parts.path
        try:
            self._upload(path, parse_qs(parts.query))
        except _Reply as reply:
            self._error(reply.status, reply.message, reply.headers)
        except Exception:  # noqa: BLE001
            log.exception("internal error on PUT %s", path)
            self._error(500, "internal server error; see the wandb-mirror serve log")

    # ------------------------------------------------------------------ graphql
    def _graphql(self) -> None:
        raw = self._read_body()
        if not self._authorized():
            self.mirror.stats.record(kind="graphql", operation=None, status=401)
            self._error(401, "authentication required: send Basic auth with user 'api' and a "
                             "valid API key")
            return
        try:
            payload = json.loads(raw or b"{}")
        except ValueError:
            raise _Reply(400, "request body is not JSON") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            raise _Reply(400, 'expected a JSON object {"query": ..., "variables": ...}')
        prepared = prepare(payload["query"], writable=self.mirror.options.writable)
        if self._fault("/graphql", prepared.operation_name, "graphql"):
            return
        cache = self.mirror.replies
        token = key = None
        if cache is not None and not prepared.errors and not prepared.mutation:
            key = cache.key(payload["query"], payload.get("variables"),
                            payload.get("operationName"), self._base_url())
            token, hit = cache.get(key)
            if hit is not None:
                self.mirror.stats.record(kind="graphql", operation=prepared.operation_name,
                                         status=200)
                self._send(200, hit, "application/json")
                return
        with self.server.compute, Session(self.mirror.engine) as session:
            result = execute_request(prepared, payload.get("variables"),
                                     payload.get("operationName"), self._context(session))
            body = encode_reply(result.body)
        self.mirror.stats.record(kind="graphql", operation=result.operation_name, status=200)
        if cache is not None and key is not None and "errors" not in result.body:
            cache.put(token, key, body)
        self._send(200, body, "application/json")

    # ------------------------------------------------------------------ files
    def _download(self, path: str, query: dict[str, list[str]]) -> None:
        segments = [unquote(s) for s in path.split("/")[1:]]
        kind = {"files": "file", "artifacts": "artifact_file", "parquet": "parquet"}[segments[0]]
        if segments[0] == "artifacts" and len(segments) > 1 and segments[1] == "manifest":
            kind = "manifest"
        if self._fault(path, None, kind):
            return
        with Session(self.mirror.engine) as session:
            ctx = self._context(session)
            if not (self._signed(path, query, ctx) or self._authorized()):
                self.mirror.stats.record(kind=kind, operation=None, status=401)
                raise _Reply(401, "authentication required: use the signed URL from the GraphQL "
                                  "reply or send Basic auth with an API key")
            if segments[0] == "files" and len(segments) >= 5:
                body, ctype = self._run_file(session, segments[1], segments[2], segments[3],
                                             "/".join(segments[4:]))
            elif segments[0] == "artifacts" and len(segments) >= 4 and segments[1] == "manifest":
                body, ctype = self._manifest(session, segments[2])
            elif segments[0] == "artifacts" and len(segments) >= 4 and segments[1] == "file":
                body, ctype = self._artifact_file(session, segments[2], "/".join(segments[3:]))
            elif segments[0] == "parquet" and len(segments) >= 4:
                body, ctype = self._parquet(session, segments[1], segments[2], segments[3])
            else:
                raise _Reply(404, f"no such file endpoint: {path}")
        self.mirror.stats.record(kind=kind, operation=None, status=200)
        self._send(200, body, ctype)

    def _upload(self, path: str, query: dict[str, list[str]]) -> None:
        """``PUT`` of a run file's bytes to an ``uploadUrl`` (writable servers only)."""
        segments = [unquote(s) for s in path.split("/")[1:]]
        body = self._read_body()
        if not self.mirror.options.writable:
            raise _Reply(405, "this wandb-mirror serve is read-only; start it with --writable "
                              "to accept uploads")
        if segments[0] != "files" or len(segments) < 5:
            raise _Reply(404, f"no such upload endpoint: PUT {path}")
        if self._fault(path, None, "upload"):
            return
        with Session(self.mirror.engine) as session:
            ctx = self._context(session)
            if not (self._signed(path, query, ctx, "PUT") or self._authorized()):
                self.mirror.stats.record(kind="upload", operation=None, status=401)
                raise _Reply(401, "authentication required: use the uploadUrl from "
                                  "createRunFiles or send Basic auth with an API key")
        from .mutations import store_upload

        problem = store_upload(self.mirror.engine, segments[1], segments[2], segments[3],
                               "/".join(segments[4:]), body)
        if problem:
            raise _Reply(404, problem)
        self.mirror.stats.record(kind="upload", operation=None, status=200)
        self._send_json(200, {"ok": True, "size": len(body)})

    def _run_file(self, session: Session, entity: str, project: str, run_id: str,
                  name: str) -> tuple[bytes, str]:
        proj = store_runs.get_project(session, entity, project)
        run = store_runs.get_run(session, proj.pk, run_id) if proj else None
        row = store_files.get_file(session, run.pk, name) if run else None
        where = f"{entity}/{project}/{run_id}"
        if row is None:
            raise _Reply(404, f"run {where} has no file {name!r} in this mirror")
        data = store_files.get_content(session, row.md5)
        if data is None:
            raise _Reply(404, f"file {name!r} of run {where} (md5 {row.md5}) was never mirrored: "
                              "only its metadata is in the store; sync the run's files with "
                              "content to serve it")
        return data, row.mimetype or "application/octet-stream"

    def _manifest(self, session: Session, artifact_id: str) -> tuple[bytes, str]:
        version = store_artifacts.get_version_by_id(session, artifact_id)
        if version is None:
            raise _Reply(404, f"no artifact {artifact_id!r} in this mirror")
        if version.manifest_raw is None:
            raise _Reply(404, f"the manifest of artifact {artifact_id!r} was never mirrored; "
                              "sync the artifact's manifest to serve it")
        return version.manifest_raw.encode("utf-8"), "application/json"

    def _artifact_file(self, session: Session, artifact_id: str, path: str) -> tuple[bytes, str]:
        version = store_artifacts.get_version_by_id(session, artifact_id)
        entries = store_artifacts.list_entries(session, version.pk, names=[path]) if version else []
        if not entries:
            raise _Reply(404, f"artifact {artifact_id!r} has no file {path!r} in this mirror")
        entry = entries[0]
        if entry.ref is not None:
            raise _Reply(404, f"{path!r} of artifact {artifact_id!r} is a reference to "
                              f"{entry.ref}; fetch it from there")
        data = store_files.get_content(session, entry.digest)
        if data is None:
            raise _Reply(404, f"file {path!r} of artifact {artifact_id!r} (md5 {entry.digest}) "
                              "was never mirrored; sync the artifact's files to serve it")
        return data, "application/octet-stream"

    def _parquet(self, session: Session, entity: str, project: str, run_id: str) -> tuple[bytes, str]:
        from ..store import history

        proj = store_runs.get_project(session, entity, project)
        run = store_runs.get_run(session, proj.pk, run_id) if proj else None
        if run is None:
            raise _Reply(404, f"no run {entity}/{project}/{run_id} in this mirror")
        import pyarrow.parquet as pq

        table = history.to_arrow(session, run.pk)
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue(), "application/vnd.apache.parquet"

    # ------------------------------------------------------------------ test mode
    def _test_endpoint(self, path: str, body: bytes) -> None:
        mirror = self.mirror
        if path == "/_mirror/stats" and self.command in ("GET", "HEAD"):
            self._send_json(200, mirror.stats.snapshot())
        elif path == "/_mirror/stats/reset" and self.command == "POST":
            mirror.stats.reset()
            self._send_json(200, {"ok": True})
        elif path == "/_mirror/faults" and self.command == "POST":
            try:
                data = json.loads(body or b"null")
                mirror.faults = None if not data else Faults.from_dict(data)
            except (ValueError, TypeError) as exc:
                raise _Reply(400, f"bad fault settings: {exc}") from None
            self._send_json(200, {"faults": mirror.faults.to_dict() if mirror.faults else None})
        else:
            raise _Reply(404, f"no such test endpoint: {self.command} {path}")
