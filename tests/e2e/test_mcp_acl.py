"""ai-mcp-proxy ACLs end to end: what a denied caller sees (the same answer as
for something that does not exist) for tools, resources and prompts, with the
real Python MCP SDK (2.x and 1.x) on both sides of the gateway.
"""

import re
import sys

import httpx
import pytest

from configs import ALICE_KEY, BOB_KEY, poll
from test_mcp import (MCP1_PYTHON, jsonrpc_answer, mcp_config, mcp_servers, run_client,  # noqa: F401
                      stateless_call, stateless_headers)

DENY_DELETE_EVERYTHING = """
[[plugins.config.tools]]
name = "delete_everything"
acl = { deny = ["bob"] }
"""


def raw_call(gw, tool: str, key: str = BOB_KEY) -> httpx.Response:
    """A 2026-07-28 tools/call (no session: nothing in the answer differs by server state)."""
    headers = {**stateless_headers("tools/call", tool), "apikey": key, "x-request-id": "req-fixed"}
    return httpx.post(gw.url + "/mcp", headers=headers, json=stateless_call(tool, {}), timeout=10)


def comparable(r: httpx.Response):
    return r.status_code, sorted((k, v) for k, v in r.headers.items() if k != "date"), r.content


def test_a_denied_tool_gets_the_same_json_rpc_error_whether_it_exists_or_not(mcp_servers, gateway_factory):
    has_it = mcp_servers("r1", extra_tools=("delete_everything",))
    lacks_it = mcp_servers("r1")
    gw_has = gateway_factory(mcp_config(has_it.url, tools=DENY_DELETE_EVERYTHING), name="gw-has")
    gw_lacks = gateway_factory(mcp_config(lacks_it.url, tools=DENY_DELETE_EVERYTHING), name="gw-lacks")

    # The two upstreams really differ: alice may call it, and only one server has it.
    ran = raw_call(gw_has, "delete_everything", key=ALICE_KEY).json()
    assert ran["result"]["content"][0]["text"] == "ran" and not ran["result"].get("isError"), ran
    absent = raw_call(gw_lacks, "delete_everything", key=ALICE_KEY).json()
    assert absent["result"]["isError"] is True, absent

    denied_existing, denied_absent = raw_call(gw_has, "delete_everything"), raw_call(gw_lacks, "delete_everything")
    assert denied_existing.json() == {"jsonrpc": "2.0", "id": 1,
                                      "error": {"code": -32602, "message": "Unknown tool: delete_everything"}}
    assert comparable(denied_existing) == comparable(denied_absent)

    # Every SDK client mode sees a JSON-RPC error (McpError), not a tool result.
    clients = [(sys.executable, m, p) for m, p in [("streamable", "/mcp"), ("2026-07-28", "/mcp"),
                                                   ("legacy", "/legacy/sse")]]
    if MCP1_PYTHON:
        clients += [(MCP1_PYTHON, "streamable", "/mcp"), (MCP1_PYTHON, "legacy", "/legacy/sse")]
    for python, mode, path in clients:
        outs = [run_client(gw.url + path, mode, key=BOB_KEY, python=python, scenario="call", tool="delete_everything")
                for gw in (gw_has, gw_lacks)]
        for out in outs:
            assert out["error"] == {"code": -32602, "message": "Unknown tool: delete_everything"}, (mode, out)
            assert out["result"] is None, (mode, out)

    # The denial is audited and counted as before: one per call.
    calls = 1 + len(clients)

    def denials(gw):
        found = [l for l in gw.access_log() if l.get("mcp", {}).get("decision") == "denied"]
        return found if len(found) >= calls else None
    lines = poll(lambda: denials(gw_has)) or []
    assert len(lines) == calls and all(l["consumer"] == "bob" and l["mcp"]["tool"] == "delete_everything"
                                       for l in lines), lines
    m = re.search(r'ai_mcp_requests_total\{decision="denied",method="tools/call",tool="delete_everything"\} (\d+)',
                  gw_has.metrics())
    assert m and int(m.group(1)) == calls


RESOURCE_AND_PROMPT_ACLS = """
resources = [
  { uri = "config://app", acl = { allow = ["admin"] } },
  { uri = "config://secret", acl = { deny = ["developer"] } },
  { uri = "users://{user_id}/profile", acl = { allow = ["admin"] } },
]
prompts = [{ name = "greet", acl = { deny = ["bob"] } }]
"""


def session(url: str, key: str):
    """A stateful 2025-11-25 session: a function that posts one request in it
    and returns its JSON-RPC answer."""
    h = {"apikey": key, "accept": "application/json, text/event-stream"}
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "0"}}}
    r = httpx.post(url, json=init, headers=h, timeout=10)
    assert r.status_code == 200, r.text
    h = {**h, "mcp-session-id": r.headers["mcp-session-id"], "mcp-protocol-version": "2025-11-25"}
    assert httpx.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=h,
                      timeout=10).status_code == 202

    def post(method: str, params: dict | None = None) -> dict:
        r = httpx.post(url, json={"jsonrpc": "2.0", "id": 7, "method": method, "params": params or {}}, headers=h,
                       timeout=10)
        assert r.status_code == 200, r.text
        return jsonrpc_answer(r)
    return post


def test_resources_and_prompts_are_filtered_and_a_denied_one_looks_absent(mcp_servers, gateway_factory):
    server = mcp_servers("r1")
    gw = gateway_factory(mcp_config(server.url, plugin_extra=RESOURCE_AND_PROMPT_ACLS))
    alice, bob = session(gw.url + "/mcp", ALICE_KEY), session(gw.url + "/mcp", BOB_KEY)

    # Lists: alice (admin) sees everything, bob (developer) what his groups may use.
    assert [r["uri"] for r in alice("resources/list")["result"]["resources"]] == ["config://app"]
    assert bob("resources/list")["result"]["resources"] == []
    assert [t["uriTemplate"] for t in alice("resources/templates/list")["result"]["resourceTemplates"]] == [
        "users://{user_id}/profile"]
    assert bob("resources/templates/list")["result"]["resourceTemplates"] == []
    assert [p["name"] for p in alice("prompts/list")["result"]["prompts"]] == ["greet"]
    assert bob("prompts/list")["result"]["prompts"] == []

    # A denied resource is answered exactly as the server answers one it does
    # not have: config://secret does not exist, alice's read reaches the server.
    absent = alice("resources/read", {"uri": "config://secret"})
    assert absent["error"]["code"] == -32602, absent
    assert bob("resources/read", {"uri": "config://secret"}) == absent
    denied = bob("resources/read", {"uri": "config://app"})
    assert denied == {"jsonrpc": "2.0", "id": 7, "error": {
        "code": -32602, "message": "Unknown resource: config://app", "data": {"uri": "config://app"}}}
    assert alice("resources/read", {"uri": "config://app"})["result"]["contents"][0]["text"] == "app-config"
    # Another spelling of the same URI (servers normalise it) is judged as the rule's.
    assert bob("resources/read", {"uri": "CONFIG://app"})["error"]["message"] == "Unknown resource: CONFIG://app"
    # A template's rule holds for every URI it expands to, not only its listing entry.
    assert bob("resources/read", {"uri": "users://1/profile"})["error"] == {
        "code": -32602, "message": "Unknown resource: users://1/profile", "data": {"uri": "users://1/profile"}}
    got = alice("resources/read", {"uri": "users://1/profile"})
    assert got["result"]["contents"][0]["text"] == "profile of 1", got
    # Subscribing is judged like reading: alice's reaches the server (which has no subscriptions).
    assert bob("resources/subscribe", {"uri": "config://app"})["error"]["message"] == "Unknown resource: config://app"
    assert alice("resources/subscribe", {"uri": "config://app"})["error"]["code"] == -32601
    # A prompt: the specification's -32602 for an unknown name.
    assert bob("prompts/get", {"name": "greet", "arguments": {"name": "Ada"}}) == {
        "jsonrpc": "2.0", "id": 7, "error": {"code": -32602, "message": "Unknown prompt: greet"}}
    got = alice("prompts/get", {"name": "greet", "arguments": {"name": "Ada"}})
    assert got["result"]["messages"][0]["content"]["text"] == "Hello, Ada!"
    # Completions are judged by what they refer to, answered as for an unknown one.
    complete = {"ref": {"type": "ref/prompt", "name": "greet"}, "argument": {"name": "name", "value": "A"}}
    assert bob("completion/complete", complete) == {
        "jsonrpc": "2.0", "id": 7, "error": {"code": -32602, "message": "Unknown prompt: greet"}}
    assert "Unknown prompt" not in str(alice("completion/complete", complete))
    template = {"ref": {"type": "ref/resource", "uri": "users://{user_id}/profile"},
                "argument": {"name": "user_id", "value": "1"}}
    assert bob("completion/complete", template)["error"]["message"] == "Unknown resource: users://{user_id}/profile"
    assert "Unknown resource" not in str(alice("completion/complete", template))
    # Nothing else changed: bob's tools are his as before.
    assert bob("tools/call", {"name": "echo", "arguments": {"text": "x"}})["result"]["content"][0]["text"] == "[r1] x"

    def denials():
        found = [l["mcp"]["method"] for l in gw.access_log() if l.get("mcp", {}).get("decision") == "denied"]
        return found if len(found) >= 8 else None
    assert sorted(poll(denials) or []) == (["completion/complete"] * 2 + ["prompts/get"] + ["resources/read"] * 4
                                           + ["resources/subscribe"])


@pytest.mark.parametrize("sdk,mode,path", [("2.x", "streamable", "/mcp"), ("2.x", "2026-07-28", "/mcp"),
                                           ("2.x", "legacy", "/legacy/sse"), ("1.x", "streamable", "/mcp"),
                                           ("1.x", "legacy", "/legacy/sse")])
def test_sdk_clients_see_filtered_lists_and_errors_for_denied_resources_and_prompts(
        mcp_servers, gateway_factory, sdk, mode, path):
    if sdk == "1.x" and not MCP1_PYTHON:
        pytest.skip("TOLLGATE_MCP1_PYTHON names no mcp 1.x venv (make test sets it)")
    server = mcp_servers("r1")
    gw = gateway_factory(mcp_config(server.url, plugin_extra=RESOURCE_AND_PROMPT_ACLS))
    python = MCP1_PYTHON if sdk == "1.x" else sys.executable
    bob = run_client(gw.url + path, mode, key=BOB_KEY, python=python, scenario="primitives")
    assert (bob["resources"], bob["templates"], bob["prompts"]) == ([], [], [])
    assert bob["read"]["error"] == {"code": -32602, "message": "Unknown resource: config://app"}
    assert bob["prompt"]["error"] == {"code": -32602, "message": "Unknown prompt: greet"}
    alice = run_client(gw.url + path, mode, key=ALICE_KEY, python=python, scenario="primitives")
    assert (alice["resources"], alice["templates"], alice["prompts"]) == (
        ["config://app"], ["users://{user_id}/profile"], ["greet"])
    assert alice["read"]["error"] is None and alice["prompt"]["error"] is None
