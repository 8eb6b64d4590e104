"""ai-mcp-proxy `conversion-listener`: a REST service described by an OpenAPI
file (tests/e2e/fixtures/market_api.openapi.json) and one hand-written Kong
tool, served as the gateway's own MCP server, reached by the Python MCP SDK
(2.x and 1.x) with key-auth and per-tool ACLs. The REST service is a small
Python server started by the test; it records what reached it.
"""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from configs import ALICE_KEY, BOB_KEY, poll
from conftest import bin_dir
from test_mcp import MCP1_PYTHON, consumers, run_client

OPENAPI = Path(__file__).parent / "fixtures" / "market_api.openapi.json"
REST_TOKEN = "rest-service-secret"


class RestService:
    """The marketplace API under /api: users, orders, a health check, and a
    destructive DELETE; every request is recorded (method, path, headers, body)."""

    def __init__(self):
        seen = self.requests = []

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json" if not isinstance(body, bytes) else "text/plain")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self):
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else b""
                url = urlsplit(self.path)
                seen.append({"method": self.command, "path": url.path, "query": parse_qs(url.query),
                             "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body.decode()})
                return url, body

            def do_GET(self):
                url, _ = self._record()
                parts = url.path.strip("/").split("/")
                if url.path == "/api/health":
                    return self._answer(200, b"ok")
                if parts[:2] == ["api", "users"] and len(parts) == 3:
                    if parts[2] != "u1":
                        return self._answer(404, {"error": f"no such user: {parts[2]}"})
                    verbose = parse_qs(url.query).get("verbose", ["false"])[0]
                    return self._answer(200, {"id": "u1", "name": "Ada", "verbose": verbose})
                self._answer(404, {"error": "no route"})

            def do_POST(self):
                url, body = self._record()
                parts = url.path.strip("/").split("/")
                order = json.loads(body or b"{}")
                self._answer(201, {"order": 1, "user": parts[2], **order})

            def do_DELETE(self):
                self._record()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()


@pytest.fixture
def rest():
    s = RestService()
    yield s
    s.stop()


def conversion_config(rest_url: str, spec: str = str(OPENAPI)) -> str:
    """Service `market` at the REST API's /api, route /market/mcp with
    key-auth; tools from the OpenAPI file plus `health` written Kong's way;
    delete_everything for admins (alice) only."""
    return f"""
[[services]]
name = "market"
url = "{rest_url}/api"

[[routes]]
name = "market-mcp"
service = "market"
paths = ["/market/mcp"]
{consumers()}
[[plugins]]
name = "key-auth"
service = "market"

[[plugins]]
name = "ai-mcp-proxy"
service = "market"
[plugins.config]
mode = "conversion-listener"
openapi_spec = "{spec}"
default_acl = [{{ scope = "tools", allow = ["admin", "developer"] }}]
upstream_auth = {{ header_name = "X-Api-Token", header_value = "{REST_TOKEN}" }}

[[plugins.config.tools]]
name = "delete_everything"
acl = {{ allow = ["admin"] }}

[[plugins.config.tools]]
name = "health"
description = "Is the marketplace up?"
method = "GET"
path = "/health"
"""


CLIENTS = [("2.x", "streamable"), ("2.x", "auto"), ("2.x", "2026-07-28"), ("1.x", "streamable")]


@pytest.mark.parametrize("sdk,mode", CLIENTS, ids=[f"{s}-{m}" for s, m in CLIENTS])
def test_a_rest_api_described_by_openapi_is_callable_as_mcp_tools(rest, gateway_factory, sdk, mode):
    if sdk == "1.x" and not MCP1_PYTHON:
        pytest.skip("TOLLGATE_MCP1_PYTHON names no mcp 1.x venv (make test sets it)")
    python = MCP1_PYTHON if sdk == "1.x" else sys.executable
    gw = gateway_factory(conversion_config(rest.url))
    url = gw.url + "/market/mcp"

    def client(key, **kw):
        return run_client(url, mode, key=key, python=python, **kw)

    # Operations with an operationId, the hand-written tool; an admin also sees delete_everything.
    assert sorted(client(BOB_KEY, scenario="list")["tools"]) == ["create_order", "get_user", "health"]
    assert "delete_everything" in client(ALICE_KEY, scenario="list")["tools"]

    user = client(BOB_KEY, scenario="call", tool="get_user", args={"userId": "u1", "verbose": True})
    assert not user["is_error"], user
    assert user["structured"] == {"id": "u1", "name": "Ada", "verbose": "true"}
    assert json.loads(user["result"])["name"] == "Ada"
    got = [r for r in rest.requests if r["method"] == "GET" and r["path"] == "/api/users/u1"][-1]
    assert got["query"] == {"verbose": ["true"]}
    # The service's credential is injected; the caller's key stays at the gateway.
    assert got["headers"]["x-api-token"] == REST_TOKEN
    assert "apikey" not in got["headers"] and BOB_KEY not in json.dumps(got)

    order = client(BOB_KEY, scenario="call", tool="create_order",
                   args={"userId": "u1", "X-Idempotency-Key": "k-1", "body": {"item": "tea", "qty": 2}})
    assert not order["is_error"], order
    assert order["structured"] == {"order": 1, "user": "u1", "item": "tea", "qty": 2}
    posted = [r for r in rest.requests if r["method"] == "POST"][-1]
    assert posted["path"] == "/api/users/u1/orders"
    assert json.loads(posted["body"]) == {"item": "tea", "qty": 2}
    assert posted["headers"]["x-idempotency-key"] == "k-1"
    assert posted["headers"]["content-type"] == "application/json"

    # An error status is a tool error carrying the status and the service's body.
    missing = client(BOB_KEY, scenario="call", tool="get_user", args={"userId": "nobody"})
    assert missing["is_error"] and missing["error"] is None, missing
    assert missing["result"].startswith("HTTP 404: ") and "no such user: nobody" in missing["result"]

    health = client(BOB_KEY, scenario="call", tool="health")
    assert (health["result"], health["is_error"], health["structured"]) == ("ok", False, None)


def test_a_consumer_without_the_acl_is_refused_as_if_the_tool_did_not_exist(rest, gateway_factory):
    gw = gateway_factory(conversion_config(rest.url))
    url = gw.url + "/market/mcp"
    denied = run_client(url, "streamable", key=BOB_KEY, scenario="call", tool="delete_everything")
    absent = run_client(url, "streamable", key=BOB_KEY, scenario="call", tool="no_such_tool")
    assert denied["is_error"] and absent["is_error"]
    shown = lambda out: (out["error"] or {}).get("message") or out["result"]  # noqa: E731
    assert shown(denied) == "Unknown tool: delete_everything"
    assert shown(absent) == "Unknown tool: no_such_tool"
    assert denied["error"]["code"] == absent["error"]["code"] == -32602, "the MCP spec's unknown-tool error"
    assert not [r for r in rest.requests if r["method"] == "DELETE"], "the service never saw the denied call"

    allowed = run_client(url, "streamable", key=ALICE_KEY, scenario="call", tool="delete_everything")
    assert not allowed["is_error"], allowed
    assert [r["path"] for r in rest.requests if r["method"] == "DELETE"] == ["/api/everything"]

    def denial_logged():
        lines = [l for l in gw.access_log() if l.get("mcp", {}).get("decision") == "denied"]
        return lines or None
    (line,) = poll(denial_logged) or [None]
    assert line["consumer"] == "bob" and line["mcp"]["tool"] == "delete_everything"

    # Without a key: key-auth refuses before any tool is listed.
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    assert httpx.post(url, json=init, timeout=10).status_code == 401


def test_the_transport_answers_by_post_only_and_batches_and_notifications_work(rest, gateway_factory):
    gw = gateway_factory(conversion_config(rest.url))
    h = {"apikey": BOB_KEY, "accept": "application/json, text/event-stream"}
    post = lambda body: gw.http.post("/market/mcp", json=body, headers=h)  # noqa: E731
    stream = gw.http.get("/market/mcp", headers=h)
    assert stream.status_code == 405 and stream.headers["allow"] == "POST"
    assert post({"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202
    batch = post([{"jsonrpc": "2.0", "id": 1, "method": "ping"},
                  {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "get_user", "arguments": {}}},
                  {"jsonrpc": "2.0", "id": 3, "method": "resources/list"}])
    assert batch.status_code == 200
    ping, bad_args, unknown_method = batch.json()
    assert ping == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert bad_args["error"]["code"] == -32602 and "userId" in bad_args["error"]["message"]
    assert unknown_method["error"]["code"] == -32601
    garbage = gw.http.post("/market/mcp", content=b"{nope", headers={**h, "content-type": "application/json"})
    assert garbage.status_code == 400 and garbage.json()["error"]["code"] == -32700


def test_a_bad_openapi_file_is_a_config_error_naming_the_field(rest, tmp_path):
    cases = {
        "missing.json": None,
        "not-openapi.json": '{"swagger": "2.0", "paths": {}}',
        "dangling.json": '{"openapi": "3.0.0", "paths": {"/x": {"get": {"operationId": "x", '
                         '"parameters": [{"$ref": "#/components/parameters/nope"}]}}}}',
    }
    for name, text in cases.items():
        spec = tmp_path / name
        if text is not None:
            spec.write_text(text)
        cfg = tmp_path / f"{name}.toml"
        cfg.write_text('[server]\nlisten = ["127.0.0.1:1"]\n' + conversion_config(rest.url, str(spec)))
        out = subprocess.run([str(bin_dir() / "tollgate"), "check", "-c", str(cfg)],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 1, out.stdout
        errors = out.stdout + out.stderr
        assert "plugins[1].config.openapi_spec" in errors and name in errors, errors
