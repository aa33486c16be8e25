"""The transport against a real scripted HTTP server on 127.0.0.1 (no mocked requests)."""
from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from wandb_mirror.errors import AuthError, GraphQLError, RateLimited, RemoteError
from wandb_mirror.remote import GraphQLClient, Transport
from wandb_mirror.remote.transport import USER_AGENT


class Script:
    """Answers to send, in order; the last one repeats."""

    def __init__(self):
        self.answers: list[tuple] = []
        self.seen: list[dict] = []


@pytest.fixture()
def server():
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):  # keep test output clean
            pass

        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            script.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
            i = min(len(script.seen) - 1, len(script.answers) - 1)
            status, headers, payload = script.answers[i]
            if status == "drop":
                self.connection.shutdown(2)
                self.connection.close()
                return
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_GET = do_PUT = _answer

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def make(url, sleeps, **kw):
    return Transport(url, "k" * 40, sleep=sleeps.append, **kw)


def test_retry_after_is_honoured_then_success(server):
    url, script = server
    script.answers = [(429, {"Retry-After": "3"}, {"errors": ["slow down"]}),
                      (503, {}, b"busy"), (200, {}, {"data": {"ok": 1}})]
    sleeps: list[float] = []
    t = make(url, sleeps)
    assert GraphQLClient(t).execute("{ ok }") == {"ok": 1}
    assert sleeps[0] == 3.0 and 0.5 <= sleeps[1] <= 0.5 * 2 * 1.25
    assert (t.stats.requests, t.stats.retries) == (3, 2)


def test_auth_header_user_agent_and_body(server):
    url, script = server
    script.answers = [(200, {}, {"data": {}})]
    GraphQLClient(make(url, [])).execute("query { viewer { id } }", {"a": 1})
    seen = script.seen[0]
    assert seen["path"] == "/graphql"
    assert seen["headers"]["Authorization"] == "Basic " + base64.b64encode(
        b"api:" + b"k" * 40).decode()
    assert seen["headers"]["User-Agent"] == USER_AGENT and "wandb-mirror" in USER_AGENT
    assert json.loads(seen["body"]) == {"query": "query { viewer { id } }", "variables": {"a": 1}}


def test_put_bytes_sends_the_raw_body_and_retries_it_whole(server):
    url, script = server
    script.answers = [(503, {}, b"busy"), ("drop", {}, b""), (200, {}, {"ok": True})]
    sleeps: list[float] = []
    payload = bytes(range(256)) * 3
    resp = make(url, sleeps).put_bytes(f"{url}/files/e/p/r/x.bin", payload,
                                       {"Content-Type": "application/octet-stream"})
    assert resp.status_code == 200 and len(sleeps) == 2
    assert [seen["body"] for seen in script.seen] == [payload] * 3
    assert script.seen[-1]["headers"]["Content-Type"] == "application/octet-stream"
    with pytest.raises(ValueError, match="not both"):
        make(url, sleeps).request("PUT", url, json={}, data=b"x")


def test_401_is_not_retried_and_explains(server):
    url, script = server
    script.answers = [(401, {}, {"errors": [{"message": "bad key"}]})]
    sleeps: list[float] = []
    with pytest.raises(AuthError) as err:
        make(url, sleeps).post_json(url + "/graphql", {})
    assert err.value.status == 401 and "WANDB_API_KEY" in str(err.value)
    assert "rejected the API key" in str(err.value)
    assert sleeps == [] and len(script.seen) == 1


@pytest.mark.parametrize("status", [400, 403, 404])
def test_client_errors_not_retried(server, status):
    url, script = server
    script.answers = [(status, {}, {"errors": [{"message": "nope"}]})]
    with pytest.raises(RemoteError) as err:
        make(url, []).post_json(url + "/graphql", {})
    assert err.value.status == status and len(script.seen) == 1


def test_dropped_connections_are_retried(server):
    url, script = server
    script.answers = [("drop", {}, b""), ("drop", {}, b""), (200, {}, {"data": {"x": 2}})]
    sleeps: list[float] = []
    assert GraphQLClient(make(url, sleeps)).execute("{x}") == {"x": 2}
    assert len(sleeps) == 2


def test_gives_up_after_max_retries_with_rate_limited(server):
    url, script = server
    script.answers = [(429, {"Retry-After": "0"}, {"errors": ["later"]})]
    with pytest.raises(RateLimited, match="after 4 attempts"):
        make(url, [], max_retries=3).post_json(url + "/graphql", {})
    assert len(script.seen) == 4


def test_graphql_errors_become_typed_error(server):
    url, script = server
    script.answers = [(200, {}, {"errors": [{"message": "Cannot query field \"x\""}],
                                 "data": None})]
    with pytest.raises(GraphQLError) as err:
        GraphQLClient(make(url, [])).execute("{x}")
    assert err.value.messages == ['Cannot query field "x"']


def test_credentials_only_sent_to_base_url_host(server):
    url, script = server
    script.answers = [(200, {}, b"bytes")]
    other = url.replace("127.0.0.1", "localhost")
    t = make(url, [])
    assert t.get_bytes(other + "/files/x") == b"bytes"
    assert "Authorization" not in script.seen[0]["headers"]
    t.get_bytes(url + "/files/x")
    assert "Authorization" in script.seen[1]["headers"]


def test_non_json_body_is_a_clear_error(server):
    url, script = server
    script.answers = [(200, {}, b"<html>proxy</html>")]
    with pytest.raises(RemoteError, match="not JSON"):
        make(url, []).post_json(url + "/graphql", {})


def test_paging_follows_cursors(server):
    url, script = server
    page = lambda names, more: (200, {}, {"data": {"project": {"runs": {  # noqa: E731
        "edges": [{"cursor": f"c-{n}", "node": {"name": n}} for n in names],
        "pageInfo": {"endCursor": None, "hasNextPage": more}}}}})
    script.answers = [page(["a", "b"], True), page(["c"], False)]
    client = GraphQLClient(make(url, []))
    got = [n["name"] for _, nodes in client.pages("q", {}, ("project", "runs"), first=2)
           for n in nodes]
    assert got == ["a", "b", "c"]
    assert json.loads(script.seen[1]["body"])["variables"] == {"cursor": "c-b", "first": 2}
