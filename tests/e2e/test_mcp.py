"""ai-mcp-proxy end to end: the real Python MCP SDK (server and clients, 2.x and
1.x) through the real gateway with key-auth, per-tool ACLs, per-tool limits,
sessions pinned to replicas across gateway replicas, and OAuth resource-server
mode.

The 2.x SDK is the test venv's own; the 1.x client runs from the venv named by
TOLLGATE_MCP1_PYTHON (`make test` makes and names it).
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from configs import ALICE_KEY, BOB_KEY, poll
from conftest import JsonServer

FIXTURES = Path(__file__).parent / "mcp_fixtures"
MCP1_PYTHON = os.environ.get("TOLLGATE_MCP1_PYTHON")
UPSTREAM_TOKEN = "mcp-upstream-secret"
SESSION_SECRET = "an-mcp-session-secret-for-tests"
ALL_TOOLS = ["echo", "add", "whoami", "delete_user", "count", "tool_a", "tool_b", "tool_c", "tool_d", "tool_e"]
VISIBLE_TO_BOB = [t for t in ALL_TOOLS if t != "delete_user"]


class McpServer:
    """The fixture MCP server (mcp 2.3.0) on a free loopback port."""

    def __init__(self, replica: str, page_size: int | None = None, extra_tools: tuple = ()):
        args = [sys.executable, str(FIXTURES / "server.py"), "--port", "0", "--replica", replica]
        if page_size:
            args += ["--page-size", str(page_size)]
        for name in extra_tools:
            args += ["--extra-tool", name]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on (\S+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"MCP server did not start: {line!r}")
        self.url = f"http://{m.group(1)}"

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def mcp_servers():
    started = []

    def start(replica: str = "r1", page_size: int | None = None, extra_tools: tuple = ()) -> McpServer:
        s = McpServer(replica, page_size, extra_tools)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def consumers() -> str:
    return f"""
[[consumers]]
username = "alice"
groups = ["admin"]
keyauth_credentials = [{{ key = "{ALICE_KEY}" }}]

[[consumers]]
username = "bob"
groups = ["developer"]
keyauth_credentials = [{{ key = "{BOB_KEY}" }}]
"""


def mcp_config(upstream: str, *, plugin_extra: str = "", tools: str = "", key_auth: bool = True, server: str = "") -> str:
    """Service `mcp` at `upstream` (base path /) with route `/mcp` (also
    `/headers`, the fixture's header echo) kept as is, and route `/legacy`
    stripped (the legacy transport under a prefix). bob (developer) may use
    every tool but delete_user (admin only)."""
    auth = """
[[plugins]]
name = "key-auth"
service = "mcp"
""" if key_auth else ""
    return f"""{server}
[[services]]
name = "mcp"
url = "{upstream}"

[[routes]]
name = "mcp"
service = "mcp"
paths = ["/mcp", "/headers"]
strip_path = false

[[routes]]
name = "legacy"
service = "mcp"
paths = ["/legacy"]
{consumers()}
{auth}
[[plugins]]
name = "ai-mcp-proxy"
service = "mcp"
[plugins.config]
default_acl = [{{ scope = "tools", allow = ["admin", "developer"] }}]
upstream_auth = {{ header_name = "X-Upstream-Token", header_value = "{UPSTREAM_TOKEN}" }}
{plugin_extra}
[[plugins.config.tools]]
name = "delete_user"
acl = {{ allow = ["admin"] }}
{tools}
"""


def run_client(url: str, mode: str, *, key: str | None = None, python: str = sys.executable,
               scenario: str = "full", tool: str = "echo", args: dict | None = None,
               headers: dict | None = None, progress: bool = False) -> dict:
    cmd = [python, str(FIXTURES / "client.py"), "--url", url, "--mode", mode, "--scenario", scenario,
           "--tool", tool, "--args", json.dumps(args or {}), "--timeout", "20"] + (["--progress"] if progress else [])
    for k, v in ({"apikey": key} if key else {}).items() | (headers or {}).items():
        cmd += ["--header", f"{k}={v}"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"client failed ({mode}): {p.stderr[-2000:]}"
    return json.loads(p.stdout.strip().splitlines()[-1])


MODES = [
    ("2.x", "auto", "/mcp"),
    ("2.x", "streamable", "/mcp"),
    ("2.x", "2026-07-28", "/mcp"),
    ("2.x", "legacy", "/legacy/sse"),
    ("1.x", "streamable", "/mcp"),
    ("1.x", "legacy", "/legacy/sse"),
]


@pytest.mark.parametrize("sdk,mode,path", MODES, ids=[f"{s}-{m}" for s, m, _ in MODES])
def test_every_sdk_mode_works_through_the_gateway(mcp_servers, gateway_factory, sdk, mode, path):
    if sdk == "1.x" and not MCP1_PYTHON:
        pytest.skip("TOLLGATE_MCP1_PYTHON names no mcp 1.x venv (make test sets it)")
    server = mcp_servers("r1", page_size=2)
    gw = gateway_factory(mcp_config(server.url))
    python = MCP1_PYTHON if sdk == "1.x" else sys.executable
    out = run_client(gw.url + path, mode, key=BOB_KEY, python=python)
    # Every page of tools/list was filtered: delete_user never shows.
    assert out["tools"] == VISIBLE_TO_BOB
    assert out["echo"] == "[r1] hello"
    assert out["progress"] == 3, "progress notifications streamed through"
    assert out["count"] == "counted 3"
    assert out["resource"] == "app-config"
    assert out["prompt"] == "Hello, Ada!"
    if mode in ("streamable", "legacy"):
        assert out["session_id"], "a stateful session was set up"


def test_a_denied_tool_is_invisible_and_uncallable_even_with_a_forged_header(mcp_servers, gateway_factory):
    server = mcp_servers("r1")
    gw = gateway_factory(mcp_config(server.url))
    url = gw.url + "/mcp"
    assert run_client(url, "2026-07-28", key=ALICE_KEY, scenario="list")["tools"] == ALL_TOOLS
    assert run_client(url, "2026-07-28", key=BOB_KEY, scenario="list")["tools"] == VISIBLE_TO_BOB

    # A denied call is a JSON-RPC error, as the MCP specification answers an
    # unknown tool (test_mcp_acl.py compares it with an absent tool's answer).
    denied = run_client(url, "streamable", key=BOB_KEY, scenario="call", tool="delete_user", args={"user_id": "1"})
    assert denied["error"] == {"code": -32602, "message": "Unknown tool: delete_user"}, denied
    allowed = run_client(url, "streamable", key=ALICE_KEY, scenario="call", tool="delete_user", args={"user_id": "1"})
    assert not allowed["is_error"], allowed

    # Raw 2026-07-28 requests: the name comes from the body, and a header that
    # disagrees with it is refused before the server sees anything.
    def call(name_header: str, tool: str):
        return httpx.post(url, headers={**stateless_headers("tools/call", name_header), "apikey": BOB_KEY},
                          json=stateless_call(tool, {"user_id": "1"}), timeout=10)
    forged = call("echo", "delete_user")
    assert forged.status_code == 400
    assert forged.json()["error"]["code"] == -32020
    honest = call("delete_user", "delete_user")
    assert honest.status_code == 200
    assert honest.json()["error"] == {"code": -32602, "message": "Unknown tool: delete_user"}

    # Log lines are written after the answer: wait for both denials.
    def denials_logged():
        lines = gw.access_log()
        found = [l for l in lines if l.get("mcp", {}).get("decision") == "denied"]
        return found if len(found) >= 2 else None
    denials = poll(denials_logged) or []
    assert len(denials) == 2 and all(l["consumer"] == "bob" and l["mcp"]["tool"] == "delete_user" for l in denials)
    assert re.search(r'ai_mcp_requests_total\{decision="denied",method="tools/call",tool="delete_user"\} 2', gw.metrics())


def test_the_callers_key_stays_at_the_gateway_and_the_upstream_credential_is_injected(mcp_servers, gateway_factory):
    server = mcp_servers("r1")
    gw = gateway_factory(mcp_config(server.url))
    assert gw.http.get("/headers").status_code == 401
    r = gw.http.get("/headers", headers={"apikey": BOB_KEY, "x-request-id": "req-123"})
    assert r.status_code == 200
    seen = r.json()["headers"]
    assert "apikey" not in seen
    assert seen["x-upstream-token"] == UPSTREAM_TOKEN
    assert seen["x-request-id"] == "req-123"
    assert r.headers["x-request-id"] == "req-123"
    r = gw.http.get("/headers?apikey=" + BOB_KEY)
    assert r.status_code == 200 and BOB_KEY not in json.dumps(r.json())


def test_bad_bodies_get_json_rpc_errors_and_the_limit_is_named(mcp_servers, gateway_factory):
    server = mcp_servers("r1")
    gw = gateway_factory(mcp_config(server.url, plugin_extra="max_request_body_size = 2048"))
    h = {"apikey": BOB_KEY, "content-type": "application/json", "accept": "application/json, text/event-stream"}
    r = gw.http.post("/mcp", headers=h, content=b'{"jsonrpc":"2.0","id":1,')
    assert r.status_code == 400 and r.json()["error"]["code"] == -32700
    r = gw.http.post("/mcp", headers=h, json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {}})
    assert r.status_code == 400 and r.json()["error"]["code"] == -32602
    r = gw.http.post("/mcp", headers=h, content=b"[" + b"1," * 2000 + b"1]")
    assert r.status_code == 413
    assert "2048 bytes" in r.json()["message"] and "max_request_body_size" in r.json()["message"]
    # The gateway is still fine.
    assert run_client(gw.url + "/mcp", "2026-07-28", key=BOB_KEY, scenario="list")["tools"] == VISIBLE_TO_BOB


def test_the_per_tool_limit_refuses_the_call_past_it(mcp_servers, gateway_factory):
    server = mcp_servers("r1")
    tools = """
[[plugins.config.tools]]
name = "echo"
limit = { window_size = [60], limit = [3] }
"""
    gw = gateway_factory(mcp_config(server.url, tools=tools))
    url = gw.url + "/mcp"

    def echo(key):
        return httpx.post(url, headers={**stateless_headers("tools/call", "echo"), "apikey": key},
                          json=stateless_call("echo", {"text": "x"}), timeout=10)
    for _ in range(3):
        r = echo(BOB_KEY)
        assert r.status_code == 200 and "error" not in r.json(), r.text
    refused = echo(BOB_KEY)
    assert refused.status_code == 200
    err = refused.json()["error"]
    assert err["code"] == -32029
    assert "3 calls per 60 s" in err["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Per consumer and per tool: alice still has her calls, bob his other tools.
    assert "error" not in echo(ALICE_KEY).json()
    r = httpx.post(url, headers={**stateless_headers("tools/call", "add"), "apikey": BOB_KEY},
                   json=stateless_call("add", {"a": 1, "b": 2}), timeout=10)
    assert "error" not in r.json()
    # The SDK shows the refusal as a JSON-RPC error on every transport.
    out = run_client(gw.url + "/legacy/sse", "legacy", key=BOB_KEY, scenario="call", tool="echo", args={"text": "x"})
    assert out["error"]["code"] == -32029


def test_sessions_stay_on_their_replica_whichever_gateway_replica_answers(mcp_servers, gateway_factory):
    r1, r2 = mcp_servers("r1"), mcp_servers("r2")
    config = mcp_config(
        "http://127.0.0.1:1",  # unused: the plugin's targets are the replicas
        plugin_extra=f'targets = ["{r1.url}/", "{r2.url}/"]\nsession_secret = "{SESSION_SECRET}"',
    )
    gateways = [gateway_factory(config, name="gw-a"), gateway_factory(config, name="gw-b")]
    replicas_seen = set()
    for n in range(20):
        first = gateways[n % 2]
        sid, init = initialize(first.url + "/mcp")
        assert init.status_code == 200, init.text
        assert sid and not re.fullmatch(r"[0-9a-f]{32}", sid), "the client sees a sealed id, not the server's"
        replica = None
        for step in range(4):
            gw = gateways[(n + step + 1) % 2]
            r = post_in_session(gw.url + "/mcp", sid, {"jsonrpc": "2.0", "id": 10 + step, "method": "tools/call",
                                                       "params": {"name": "whoami", "arguments": {}}})
            assert r.status_code == 200, f"session {n} step {step}: {r.status_code} {r.text}"
            who = json.loads(jsonrpc_answer(r)["result"]["content"][0]["text"])
            replica = replica or who["replica"]
            assert who["replica"] == replica, "a session moved replica"
        replicas_seen.add(replica)
    assert replicas_seen == {"r1", "r2"}

    # A forged or tampered id names no session.
    r = post_in_session(gateways[0].url + "/mcp", sid[:-2] + ("AA" if not sid.endswith("AA") else "BB"),
                        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert r.status_code == 404 and r.json()["error"]["message"] == "Session not found"
    # DELETE ends the session on its replica, through the other gateway.
    d = httpx.delete(gateways[1].url + "/mcp", headers={"apikey": BOB_KEY, "mcp-session-id": sid,
                                                          "mcp-protocol-version": "2025-11-25"}, timeout=10)
    assert d.status_code == 200
    r = post_in_session(gateways[0].url + "/mcp", sid, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    assert r.status_code == 404


def test_oauth_resource_server_mode(mcp_servers, gateway_factory):
    pytest.importorskip("jwt")
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "alg": "RS256", "use": "sig"})
    # The token issuer's key set on a loopback port.
    jwks = JsonServer(lambda _: {"keys": [jwk]})
    try:
        server = mcp_servers("r1")
        issuer = "https://issuer.example"
        oauth = f"""[plugins.config.oauth]
issuer = "{issuer}"
audiences = ["http://127.0.0.1:@PORT@/mcp"]
jwks_uri = "{jwks.url}/jwks.json"
resource = "http://127.0.0.1:@PORT@/mcp"
scopes_supported = ["mcp:tools"]
"""
        gw = gateway_factory(mcp_config(server.url, key_auth=False, tools=oauth))
        resource = f"http://127.0.0.1:{gw.port}/mcp"

        def token(sub, aud=resource, **extra):
            claims = {"iss": issuer, "aud": aud, "sub": sub, "exp": int(time.time()) + 300, **extra}
            return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})

        meta = gw.http.get("/.well-known/oauth-protected-resource/mcp")
        assert meta.status_code == 200
        assert meta.json()["resource"] == resource and meta.json()["authorization_servers"] == [issuer]

        r = gw.http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert r.status_code == 401
        challenge = r.headers["www-authenticate"]
        assert challenge.startswith("Bearer ")
        assert f'resource_metadata="http://127.0.0.1:{gw.port}/.well-known/oauth-protected-resource/mcp"' in challenge

        wrong = gw.http.get("/headers", headers={"authorization": f"Bearer {token('alice', aud='http://elsewhere/mcp')}"})
        assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]
        expired = gw.http.get("/headers", headers={"authorization": f"Bearer {token('alice', exp=int(time.time()) - 600)}"})
        assert expired.status_code == 401

        # The token's sub names the consumer, whose groups the tool ACL judges.
        bearer = {"Authorization": f"Bearer {token('alice')}"}
        assert run_client(gw.url + "/mcp", "2026-07-28", scenario="list", headers=bearer)["tools"] == ALL_TOOLS
        bob = {"Authorization": f"Bearer {token('bob')}"}
        assert run_client(gw.url + "/mcp", "2026-07-28", scenario="list", headers=bob)["tools"] == VISIBLE_TO_BOB
        # The caller's token is not forwarded to the MCP server.
        seen = gw.http.get("/headers", headers=bearer).json()["headers"]
        assert "authorization" not in seen
    finally:
        jwks.stop()


# Raw protocol helpers, for what the SDK does not let a test control.

def stateless_headers(method: str, name: str | None = None) -> dict:
    h = {"accept": "application/json, text/event-stream", "content-type": "application/json",
         "mcp-protocol-version": "2026-07-28", "mcp-method": method}
    if name:
        h["mcp-name"] = name
    return h


def stateless_call(tool: str, arguments: dict) -> dict:
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments, "_meta": meta}}


def initialize(url: str):
    body = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "e2e", "version": "0"}}}
    r = httpx.post(url, json=body, timeout=10, headers={
        "apikey": BOB_KEY, "accept": "application/json, text/event-stream"})
    sid = r.headers.get("mcp-session-id")
    if sid:
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert post_in_session(url, sid, note).status_code == 202
    return sid, r


def post_in_session(url: str, sid: str, body: dict):
    return httpx.post(url, json=body, timeout=10, headers={
        "apikey": BOB_KEY, "accept": "application/json, text/event-stream",
        "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"})


def jsonrpc_answer(r) -> dict:
    """The JSON-RPC answer of a POST, sent as JSON or as an SSE event."""
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        for line in r.text.splitlines():
            if line.startswith("data:"):
                msg = json.loads(line[5:])
                if "id" in msg and ("result" in msg or "error" in msg):
                    return msg
        raise AssertionError(f"no answer in stream: {r.text!r}")
    return r.json()



def test_only_mcp_methods_reach_the_server_and_pipelined_requests_never_desync(mcp_servers, gateway_factory):
    import socket

    server = mcp_servers("r1")
    gw = gateway_factory(mcp_config(server.url))
    body = json.dumps(stateless_call("delete_user", {"user_id": "1"}))
    r = httpx.put(gw.url + "/mcp", headers={**stateless_headers("tools/call", "delete_user"), "apikey": BOB_KEY},
                  content=body, timeout=10)
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST, DELETE"

    # Two requests in one write: an allowed call, then a denied one. The relay
    # watches the client while it streams the first answer; a byte of the
    # second request must never be eaten so that "OST /mcp" reaches the server.
    def raw(tool: str) -> bytes:
        b = json.dumps(stateless_call(tool, {"text": "x", "user_id": "1"})).encode()
        h = {**stateless_headers("tools/call", tool), "apikey": BOB_KEY, "host": "gw", "content-length": str(len(b))}
        return b"POST /mcp HTTP/1.1\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in h.items()) + b"\r\n" + b
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
            s.sendall(raw("echo") + raw("delete_user"))
            received = b""
            s.settimeout(2)
            try:
                while received.count(b"HTTP/1.1 ") < 2:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    received += chunk
            except socket.timeout:
                pass
        statuses = re.findall(rb"HTTP/1.1 (\d{3})", received)
        assert statuses[0] == b"200"
        # The second is answered by the gateway (denied) or the connection
        # closed before it: never forwarded in pieces.
        assert all(s == b"200" for s in statuses), received[-600:]
    methods = {l["method"] for l in gw.access_log(wait_for=21)}
    assert methods <= {"POST", "PUT"}, methods


@pytest.mark.parametrize("timeout_ms,survives", [(None, True), (1000, False)])
def test_idle_streams_survive_by_default_and_the_stream_timeout_is_configurable(mcp_servers, gateway_factory,
                                                                               timeout_ms, survives):
    server = mcp_servers("r1")
    extra = f"stream_read_timeout = {timeout_ms}" if timeout_ms else ""
    gw = gateway_factory(mcp_config(server.url, plugin_extra=extra))
    h = {"apikey": BOB_KEY}
    with httpx.Client(base_url=gw.url, timeout=15) as c, c.stream("GET", "/legacy/sse", headers=h) as stream:
        lines = stream.iter_lines()
        endpoint = next(l for l in lines if l.startswith("data:"))[5:].strip()
        assert endpoint.startswith("/legacy/messages/?session_id="), endpoint
        time.sleep(2.5)  # silence on the stream, longer than the short timeout
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
        posted = c.post(endpoint, json=init, headers=h)
        answer = None
        try:
            for line in lines if posted.status_code == 202 else []:
                if line.startswith("data:") and '"id":1' in line.replace(" ", ""):
                    answer = json.loads(line[5:])
                    break
        except httpx.HTTPError:
            answer = None
    if survives:
        assert posted.status_code == 202
        assert answer and answer["result"]["serverInfo"], answer
    else:
        # The gateway ended the silent stream, and with it the server's session.
        assert posted.status_code == 404 and answer is None, (posted.status_code, answer)


def test_per_tool_limits_on_redis_are_shared_by_gateway_replicas(mcp_servers, gateway_factory):
    from test_token_limits import Redis

    redis = Redis()
    try:
        server = mcp_servers("r1")
        extra = f'tool_limits = {{ strategy = "redis", redis = {{ host = "127.0.0.1", port = {redis.port} }} }}'
        tools = """
[[plugins.config.tools]]
name = "echo"
limit = { window_size = [60], limit = [4] }
"""
        config = mcp_config(server.url, plugin_extra=extra, tools=tools)
        gws = [gateway_factory(config, name="gw-a"), gateway_factory(config, name="gw-b")]
        results = []
        for i in range(8):
            r = httpx.post(gws[i % 2].url + "/mcp", headers={**stateless_headers("tools/call", "echo"), "apikey": BOB_KEY},
                           json=stateless_call("echo", {"text": "x"}), timeout=10)
            results.append("error" in r.json())
        assert results.count(False) == 4 and results.count(True) == 4, results
    finally:
        redis.stop()


def test_mcp_secrets_and_session_ids_stay_out_of_logs_metrics_and_status(mcp_servers, gateway_factory):
    r1, r2 = mcp_servers("r1"), mcp_servers("r2")
    config = mcp_config("http://127.0.0.1:1", plugin_extra=f'targets = ["{r1.url}/", "{r2.url}/"]\nsession_secret = "{SESSION_SECRET}"')
    gw = gateway_factory(config)
    sid, _ = initialize(gw.url + "/mcp")
    upstream_ids = set()
    for _ in range(3):
        r = post_in_session(gw.url + "/mcp", sid, {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                                                     "params": {"name": "whoami", "arguments": {}}})
        upstream_ids.add(json.loads(jsonrpc_answer(r)["result"]["content"][0]["text"])["session_id"])
    post_in_session(gw.url + "/mcp", sid, {"jsonrpc": "2.0", "id": 6, "method": "tools/call",
                                           "params": {"name": "delete_user", "arguments": {"user_id": "1"}}})
    gw.http.get("/headers", headers={"apikey": "wrong-key-5e5c"})
    lines = gw.access_log(wait_for=7)
    exposed = "\n".join([json.dumps(lines), gw.stderr(), gw.metrics(),
                         httpx.get(f"{gw.admin_url}/status", timeout=5).text])
    for secret in [SESSION_SECRET, UPSTREAM_TOKEN, BOB_KEY, ALICE_KEY, "wrong-key-5e5c", sid, *upstream_ids]:
        assert secret not in exposed, f"{secret[:12]}... leaked"
