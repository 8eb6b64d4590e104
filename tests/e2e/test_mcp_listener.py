"""ai-mcp-proxy `listener`: one MCP endpoint of the gateway's own in front of
three upstream MCP servers (the fixture server, Python MCP SDK 2.3.0, as r1,
r2, r3; Streamable HTTP, and one test with a legacy HTTP+SSE server). The SDK (2.x and 1.x) sees one server with all their tools, calls
each, receives progress notifications, and loses only the tools of a server
that is stopped. Tool ACLs apply to the merged names.
"""

import sys

import httpx
import pytest

from configs import ALICE_KEY, BOB_KEY, poll
from test_mcp import ALL_TOOLS, MCP1_PYTHON, consumers, mcp_servers, run_client  # noqa: F401 (a fixture)

SESSION_SECRET = "a-listener-session-secret"
SERVERS = ["r1", "r2", "r3"]


def listener_config(servers: dict, tool_prefix: str = "on_collision", legacy: frozenset = frozenset()) -> str:
    """Route /hub with key-auth in front of `servers` (name -> fixture; those
    in `legacy` on the HTTP+SSE transport); r2's delete_user for admins
    (alice) only."""
    def entry(name, s):
        if name in legacy:
            return f'\n[[plugins.config.servers]]\nname = "{name}"\nurl = "{s.url}/sse"\ntransport = "sse"\n'
        return f'\n[[plugins.config.servers]]\nname = "{name}"\nurl = "{s.url}/mcp"\n'
    entries = "".join(entry(name, s) for name, s in servers.items())
    return f"""
[[services]]
name = "hub"

[[routes]]
name = "hub"
service = "hub"
paths = ["/hub"]
{consumers()}
[[plugins]]
name = "key-auth"
service = "hub"

[[plugins]]
name = "ai-mcp-proxy"
service = "hub"
[plugins.config]
mode = "listener"
session_secret = "{SESSION_SECRET}"
tool_prefix = "{tool_prefix}"
default_acl = [{{ scope = "tools", allow = ["admin", "developer"] }}]
{entries}
[[plugins.config.tools]]
name = "r2_delete_user"
acl = {{ allow = ["admin"] }}
"""


def merged(names=SERVERS) -> list[str]:
    # Every fixture server has the same ten tools: every name collides.
    return sorted(f"{s}_{t}" for s in names for t in ALL_TOOLS)


CLIENTS = [("2.x", "streamable"), ("2.x", "auto"), ("2.x", "2026-07-28"), ("1.x", "streamable")]


@pytest.mark.parametrize("sdk,mode", CLIENTS, ids=[f"{s}-{m}" for s, m in CLIENTS])
def test_one_endpoint_serves_the_tools_of_three_servers(mcp_servers, gateway_factory, sdk, mode):
    if sdk == "1.x" and not MCP1_PYTHON:
        pytest.skip("TOLLGATE_MCP1_PYTHON names no mcp 1.x venv (make test sets it)")
    python = MCP1_PYTHON if sdk == "1.x" else sys.executable
    servers = {name: mcp_servers(name, page_size=4) for name in SERVERS}
    gw = gateway_factory(listener_config(servers))
    url = gw.url + "/hub"

    def client(key=BOB_KEY, **kw):
        return run_client(url, mode, key=key, python=python, **kw)

    assert sorted(client(ALICE_KEY, scenario="list")["tools"]) == merged()
    assert sorted(client(scenario="list")["tools"]) == [t for t in merged() if t != "r2_delete_user"]
    # Each call reaches its own server, under the server's name for the tool.
    for name in SERVERS:
        out = client(scenario="call", tool=f"{name}_echo", args={"text": "hi"})
        assert (out["result"], out["is_error"]) == (f"[{name}] hi", False), out
    counted = client(scenario="call", tool="r3_count", args={"n": 3}, progress=True)
    assert (counted["result"], counted["progress"]) == ("counted 3", 3), counted

    denied = client(scenario="call", tool="r2_delete_user", args={"user_id": "1"})
    absent = client(scenario="call", tool="r9_echo", args={"text": "hi"})
    shown = lambda out: (out["error"] or {}).get("message") or out["result"]  # noqa: E731
    assert (shown(denied), shown(absent)) == ("Unknown tool: r2_delete_user", "Unknown tool: r9_echo")
    assert denied["error"]["code"] == absent["error"]["code"] == -32602, (denied, absent)
    allowed = client(ALICE_KEY, scenario="call", tool="r2_delete_user", args={"user_id": "1"})
    assert (allowed["result"], allowed["is_error"]) == ("deleted 1", False), allowed


def test_a_stopped_server_takes_only_its_own_tools_away(mcp_servers, gateway_factory):
    servers = {name: mcp_servers(name) for name in SERVERS}
    gw = gateway_factory(listener_config(servers))
    url = gw.url + "/hub"
    assert len(run_client(url, "streamable", key=ALICE_KEY, scenario="list")["tools"]) == 30
    servers["r2"].stop()
    assert sorted(run_client(url, "streamable", key=ALICE_KEY, scenario="list")["tools"]) == merged(["r1", "r3"])
    out = run_client(url, "streamable", key=BOB_KEY, scenario="call", tool="r3_add", args={"a": 2, "b": 3})
    assert (out["result"], out["is_error"]) == ("5", False), out
    gone = run_client(url, "streamable", key=BOB_KEY, scenario="call", tool="r2_echo", args={"text": "x"})
    assert gone["is_error"] and "Unknown tool: r2_echo" in ((gone["error"] or {}).get("message") or gone["result"])

    def logged():
        lines = [l for l in gw.access_log() if l.get("mcp", {}).get("tool") == "r3_add"]
        return lines or None
    (line,) = poll(logged) or [None]
    assert line["mcp"]["replica"] == "r3" and line["consumer"] == "bob"


def test_names_are_prefixed_only_when_they_collide_unless_always(mcp_servers, gateway_factory):
    one = {"solo": mcp_servers("solo")}
    gw = gateway_factory(listener_config(one))
    assert sorted(run_client(gw.url + "/hub", "streamable", key=ALICE_KEY, scenario="list")["tools"]) == sorted(ALL_TOOLS)
    # The SDK's whole scenario through one server: tools, progress, a resource, a prompt.
    full = run_client(gw.url + "/hub", "streamable", key=BOB_KEY)
    assert (full["echo"], full["count"], full["progress"]) == ("[solo] hello", "counted 3", 3), full
    assert (full["resource"], full["prompt"]) == ("app-config", "Hello, Ada!"), full
    always = gateway_factory(listener_config(one, tool_prefix="always"), name="always")
    tools = run_client(always.url + "/hub", "streamable", key=ALICE_KEY, scenario="list")["tools"]
    assert sorted(tools) == sorted(f"solo_{t}" for t in ALL_TOOLS)


def test_sessions_are_sealed_and_the_transport_is_answered(mcp_servers, gateway_factory):
    servers = {name: mcp_servers(name) for name in SERVERS[:2]}
    gw = gateway_factory(listener_config(servers))
    h = {"apikey": BOB_KEY, "accept": "application/json, text/event-stream"}
    tools_list = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    assert gw.http.post("/hub", json=tools_list, headers=h).status_code == 400, "a session is needed"
    forged = gw.http.post("/hub", json=tools_list, headers={**h, "mcp-session-id": "tg1.forged"})
    assert forged.status_code == 404
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    r = gw.http.post("/hub", json=init, headers=h)
    assert r.status_code == 200 and r.json()["result"]["protocolVersion"] == "2025-06-18"
    sid = r.headers["mcp-session-id"]
    # The servers' own session ids are not readable in the client's.
    assert "r1" not in sid and len(sid) > 40
    listed = gw.http.post("/hub", json=tools_list, headers={**h, "mcp-session-id": sid})
    assert len(listed.json()["result"]["tools"]) == 19
    def ask(method, params=None):
        body = {"jsonrpc": "2.0", "id": 3, "method": method, "params": params or {}}
        return gw.http.post("/hub", json=body, headers={**h, "mcp-session-id": sid})
    # Prompts merge by name like tools; a resource both servers have is the first one's.
    assert sorted(p["name"] for p in ask("prompts/list").json()["result"]["prompts"]) == ["r1_greet", "r2_greet"]
    assert [r["uri"] for r in ask("resources/list").json()["result"]["resources"]] == ["config://app"]
    assert "app-config" in ask("resources/read", {"uri": "config://app"}).text
    assert "Hello, Bo!" in ask("prompts/get", {"name": "r2_greet", "arguments": {"name": "Bo"}}).text
    assert ask("resources/read", {"uri": "nope://x"}).json()["error"]["code"] == -32002
    assert gw.http.get("/hub", headers={**h, "mcp-session-id": sid}).status_code == 405
    assert gw.http.delete("/hub", headers={**h, "mcp-session-id": sid}).status_code == 200
    assert httpx.post(gw.url + "/hub", json=init, timeout=10).status_code == 401


def test_a_client_that_leaves_mid_call_ends_the_relay(mcp_servers, gateway_factory):
    gw = gateway_factory(listener_config({"r1": mcp_servers("r1")}))
    h = {"apikey": BOB_KEY, "accept": "application/json, text/event-stream"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    h["mcp-session-id"] = gw.http.post("/hub", json=init, headers=h).headers["mcp-session-id"]
    count = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
             "params": {"name": "count", "arguments": {"n": 100}, "_meta": {"progressToken": "p"}}}
    with httpx.Client(base_url=gw.url, timeout=10) as c, c.stream("POST", "/hub", json=count, headers=h) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if "notifications/progress" in line:
                break  # one progress event arrived; hang up 5 s before the call would end

    def logged():
        lines = [l for l in gw.access_log() if l.get("mcp", {}).get("tool") == "count"]
        return lines or None
    (line,) = poll(logged, timeout=3) or [None]
    assert "client went away" in line.get("error", ""), line

def test_an_acl_on_a_prefixed_name_holds_when_the_collision_goes_away(mcp_servers, gateway_factory):
    """r2_delete_user is for admins; with r1 and r3 stopped, r2's tool is offered as plain
    delete_user, and bob must still not see or call it."""
    servers = {name: mcp_servers(name) for name in SERVERS}
    gw = gateway_factory(listener_config(servers))
    url = gw.url + "/hub"
    servers["r1"].stop()
    servers["r3"].stop()
    assert "delete_user" in run_client(url, "streamable", key=ALICE_KEY, scenario="list")["tools"]
    assert "delete_user" not in run_client(url, "streamable", key=BOB_KEY, scenario="list")["tools"]
    out = run_client(url, "streamable", key=BOB_KEY, scenario="call", tool="delete_user", args={"user_id": "1"})
    assert out["is_error"] and out["error"] and out["error"]["code"] == -32602, out
    assert out["error"]["message"] == "Unknown tool: delete_user"



@pytest.mark.parametrize("sdk", ["2.x", "1.x"])
def test_a_legacy_sse_server_serves_beside_a_streamable_one(mcp_servers, gateway_factory, sdk):
    if sdk == "1.x" and not MCP1_PYTHON:
        pytest.skip("TOLLGATE_MCP1_PYTHON names no mcp 1.x venv (make test sets it)")
    python = MCP1_PYTHON if sdk == "1.x" else sys.executable
    servers = {"new": mcp_servers("new"), "old": mcp_servers("old")}
    gw = gateway_factory(listener_config(servers, legacy=frozenset({"old"})))
    url = gw.url + "/hub"

    def client(key=BOB_KEY, **kw):
        return run_client(url, "streamable", key=key, python=python, **kw)

    assert sorted(client(ALICE_KEY, scenario="list")["tools"]) == merged(["new", "old"])
    for name in ("new", "old"):
        out = client(scenario="call", tool=f"{name}_echo", args={"text": "hi"})
        assert (out["result"], out["is_error"]) == (f"[{name}] hi", False), out
    counted = client(scenario="call", tool="old_count", args={"n": 3}, progress=True)
    assert (counted["result"], counted["progress"]) == ("counted 3", 3), counted
    # The ACL names merged names: only r2_delete_user is for admins, old's is open.
    opened = client(scenario="call", tool="old_delete_user", args={"user_id": "1"})
    assert (opened["result"], opened["is_error"]) == ("deleted 1", False), opened
