"""MCP client driver for tollgate's end-to-end tests, built on the real Python MCP SDK.

    python client.py --url URL --mode MODE [--header K=V ...] [--scenario full|call|list|primitives]
                     [--tool NAME --args JSON] [--uri URI --prompt NAME] [--trace FILE] [--timeout SECONDS]

MODE with mcp 2.x:
  auto        Streamable HTTP; probes `server/discover` and speaks 2026-07-28 if the
              server does, else falls back to the initialize handshake (SDK default)
  streamable  Streamable HTTP with the initialize handshake (2025-11-25, stateful)
  2026-07-28  Streamable HTTP pinned to 2026-07-28 (stateless, Mcp-Method/Mcp-Name
              headers, no initialize); one explicit `server/discover` is sent too
  legacy      the legacy HTTP+SSE transport; URL is the /sse endpoint
MODE with mcp 1.x: streamable, legacy.

Prints one JSON line on stdout and exits 0; on failure prints the exception on
stderr and exits 1. In the `call` scenario a JSON-RPC error from the server is an
outcome, not a failure: it is printed in "error" and the exit code is 0.
--trace FILE appends one JSON line per HTTP request sent (method, url, headers, body,
response status and content type), so tests can check exactly what went over the wire.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import AsyncExitStack
from typing import Any

import anyio

try:  # mcp 2.x talks HTTP through httpx2
    import httpx2 as httpx
    from mcp import Client
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.exceptions import MCPError as RpcError

    SDK2 = True
except ImportError:  # mcp 1.x: ClientSession over httpx
    import httpx
    from mcp import ClientSession
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.exceptions import McpError as RpcError

    SDK2 = False

MODES = ("auto", "streamable", "2026-07-28", "legacy") if SDK2 else ("streamable", "legacy")


class Wire:
    """httpx event hooks: record each request (for --trace) and the session id the
    server hands out (Streamable HTTP puts it in the Mcp-Session-Id response header)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._pending: dict[int, dict[str, Any]] = {}  # id(request) -> its entry, until answered
        self.session_id: str | None = None

    async def on_request(self, request) -> None:
        entry = {
            "method": request.method,
            "url": str(request.url),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.headers.raw],
            "body": json.loads(request.content) if request.content else None,  # MCP bodies are JSON
        }
        self.requests.append(entry)
        self._pending[id(request)] = entry

    async def on_response(self, response) -> None:
        entry = self._pending.pop(id(response.request), None)
        if entry is not None:
            entry["status"] = response.status_code
            entry["content_type"] = response.headers.get("content-type")
        self.session_id = response.headers.get("mcp-session-id") or self.session_id

    def client_factory(self, extra: dict[str, str]):
        """An McpHttpClientFactory that adds our hooks and the --header headers."""

        def factory(headers=None, timeout=None, auth=None):
            merged = {**(headers or {}), **extra}
            return httpx.AsyncClient(
                headers=merged,
                timeout=timeout or httpx.Timeout(30.0, read=300.0),
                auth=auth,
                event_hooks={"request": [self.on_request], "response": [self.on_response]},
            )

        return factory


def _get(obj: Any, snake: str, camel: str) -> Any:
    """2.x models use snake_case attributes, 1.x models camelCase."""
    return getattr(obj, snake) if hasattr(obj, snake) else getattr(obj, camel)


def _text(contents: list) -> str:
    return "".join(getattr(c, "text", "") or "" for c in contents)


class Driver:
    """One connected session behind a version-neutral API."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.wire = Wire()
        self.extra = dict(h.split("=", 1) for h in args.header)
        self.sse_session_id: str | None = None  # legacy SSE: the endpoint event's ?session_id=
        self.protocol_version: str | None = None
        self.discover: dict | None = None
        self.session: Any = None  # 2.x Client, or 1.x ClientSession

    def _on_sse_session(self, sid: str) -> None:
        self.sse_session_id = sid

    async def connect(self, stack: AsyncExitStack) -> None:
        mode, url = self.args.mode, self.args.url
        factory = self.wire.client_factory(self.extra)
        if mode == "legacy":
            transport = sse_client(url, httpx_client_factory=factory, on_session_created=self._on_sse_session)
        else:
            http = await stack.enter_async_context(factory())
            transport = streamable_http_client(url, http_client=http)

        if SDK2:
            # Client's mode: "legacy" = initialize handshake (the transport is chosen above),
            # "auto" = discover probe with handshake fallback, a version = pinned, no probe.
            # cache=None so every list call really goes over the wire.
            client_mode = {"streamable": "legacy", "legacy": "legacy"}.get(mode, mode)
            self.session = await stack.enter_async_context(Client(transport, mode=client_mode, cache=None))
            self.protocol_version = self.session.protocol_version
            if mode == "2026-07-28":
                # Pinning skips the probe; send one discover anyway so it crosses the gateway.
                self.discover = await self.session.session.send_discover(mode)
            elif self.session.session.discover_result is not None:
                found = self.session.session.discover_result  # auto mode's probe result
                self.discover = found.model_dump(mode="json", by_alias=True, exclude_none=True)
        else:
            streams = await stack.enter_async_context(transport)
            self.session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
            init = await self.session.initialize()
            self.protocol_version = init.protocolVersion

    @property
    def session_id(self) -> str | None:
        return self.sse_session_id or self.wire.session_id

    async def list_all_tools(self) -> list[str]:
        names: list[str] = []
        cursor = None
        for _ in range(100):  # bounded: a looping cursor must not hang the test
            page = await self.session.list_tools(cursor=cursor)
            names += [t.name for t in page.tools]
            cursor = _get(page, "next_cursor", "nextCursor")
            if not cursor:
                return names
        raise RuntimeError("tools/list did not finish within 100 pages")

    async def call(self, name: str, arguments: dict, on_progress=None):
        return await self.session.call_tool(name, arguments, progress_callback=on_progress)


async def scenario_full(d: Driver) -> dict:
    tools = await d.list_all_tools()
    echo = await d.call("echo", {"text": "hello"})
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    count = await d.call("count", {"n": 3}, on_progress)
    resource = await d.session.read_resource("config://app")
    prompt = await d.session.get_prompt("greet", {"name": "Ada"})
    return {
        "tools": tools,
        "echo": _text(echo.content),
        "progress": len(progress),
        "count": _text(count.content),
        "resource": resource.contents[0].text,
        "prompt": prompt.messages[0].content.text,
        "session_id": d.session_id,
        "protocol_version": d.protocol_version,
        "discover": d.discover,
    }


async def scenario_call(d: Driver) -> dict:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    try:
        result = await d.call(d.args.tool, json.loads(d.args.args), on_progress if d.args.progress else None)
    except RpcError as e:
        error = {"code": e.error.code, "message": e.error.message}
        return {"result": None, "structured": None, "is_error": True, "error": error, "session_id": d.session_id}
    is_error = bool(_get(result, "is_error", "isError"))
    return {
        "result": _text(result.content),
        "structured": _get(result, "structured_content", "structuredContent"),
        "is_error": is_error,
        "error": None,
        "session_id": d.session_id,
        "progress": len(progress),
    }


async def scenario_list(d: Driver) -> dict:
    return {"tools": await d.list_all_tools()}


async def scenario_primitives(d: Driver) -> dict:
    """Lists resources, resource templates and prompts, then reads --uri and gets
    --prompt; a JSON-RPC error of either is an outcome, as in `call`."""
    resources = await d.session.list_resources()
    templates = await d.session.list_resource_templates()
    prompts = await d.session.list_prompts()

    async def outcome(request) -> dict:
        try:
            await request
            return {"error": None}
        except RpcError as e:
            return {"error": {"code": e.error.code, "message": e.error.message}}

    return {
        "resources": [str(r.uri) for r in resources.resources],
        "templates": [_get(t, "uri_template", "uriTemplate") for t in _get(templates, "resource_templates", "resourceTemplates")],
        "prompts": [p.name for p in prompts.prompts],
        "read": await outcome(d.session.read_resource(d.args.uri)),
        "prompt": await outcome(d.session.get_prompt(d.args.prompt, {"name": "Ada"})),
    }


SCENARIOS = {"full": scenario_full, "call": scenario_call, "list": scenario_list, "primitives": scenario_primitives}


async def run(args: argparse.Namespace) -> dict:
    d = Driver(args)
    try:
        with anyio.fail_after(args.timeout):
            async with AsyncExitStack() as stack:
                await d.connect(stack)
                return await SCENARIOS[args.scenario](d)
    finally:
        if args.trace:
            with open(args.trace, "a") as f:
                for entry in d.wire.requests:
                    f.write(json.dumps(entry) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description="MCP client driver (see module docstring)")
    ap.add_argument("--url", required=True)
    ap.add_argument("--mode", required=True, choices=MODES)
    ap.add_argument("--header", action="append", default=[], metavar="K=V", help="extra header on every request")
    ap.add_argument("--scenario", default="full", choices=sorted(SCENARIOS))
    ap.add_argument("--tool", default="echo")
    ap.add_argument("--args", default="{}", help="tool arguments as a JSON object")
    ap.add_argument("--uri", default="config://app", help="the resource the primitives scenario reads")
    ap.add_argument("--prompt", default="greet", help="the prompt the primitives scenario gets")
    ap.add_argument("--trace", help="append one JSON line per HTTP request to this file")
    ap.add_argument("--progress", action="store_true", help="`call` asks for progress and counts the notifications")
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    # The SDK logs a warning when a tool is called without being listed first (the
    # `call` scenario does that on purpose); keep stderr for real failures.
    for name in ("mcp", "client"):  # 1.x's ClientSession logs as "client"
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        out = anyio.run(run, args)
    except Exception as e:  # any failure, incl. task-group ExceptionGroups and the timeout
        print(_describe(e), file=sys.stderr)
        sys.exit(1)
    print(json.dumps(out), flush=True)


def _describe(e: BaseException) -> str:
    """Unwrap single-member ExceptionGroups (anyio task groups) so stderr names the real cause."""
    while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
        e = e.exceptions[0]
    return f"{type(e).__name__}: {e}"


if __name__ == "__main__":
    main()
