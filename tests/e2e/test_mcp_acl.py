"""ai-mcp-proxy ACLs end to end: what a denied caller sees (the same answer as
for something that does not exist) for tools, resources and prompts, with the
real Python MCP SDK (2.x and 1.x) on both sides of the gateway.
"""

import re
import sys

import httpx
import pytest

from configs import ALICE_KEY, BOB_KEY, poll
from test_mcp import MCP1_PYTHON, mcp_config, mcp_servers, run_client, stateless_call, stateless_headers  # noqa: F401

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
