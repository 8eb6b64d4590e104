"""MCP upstream for tollgate's end-to-end tests, built on the real Python MCP SDK.

    python server.py --port PORT --replica NAME [--page-size N] [--extra-tool NAME ...]

One port serves, on 127.0.0.1 only:
  /mcp          Streamable HTTP, stateful (Mcp-Session-Id, POST, GET stream, DELETE);
                with mcp 2.x also protocol 2026-07-28 (stateless, chosen per request
                by the MCP-Protocol-Version header)
  /sse          legacy HTTP+SSE transport: GET stream, whose `endpoint` event names
  /messages/    the POST target (?session_id=...)
  /headers      plain JSON echo of the request headers (not MCP), so tests can see
                what the gateway forwarded

Prints `listening on 127.0.0.1:PORT` (the real port, also for --port 0) once the
socket accepts connections. Written for mcp==2.3.0; also runs under mcp 1.x
(FastMCP), where there is no 2026-07-28 path.

The SDK's DNS-rebinding protection is left on with its defaults (see README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse

try:  # mcp 2.x
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.shared.exceptions import MCPError
    from mcp_types import INVALID_PARAMS, ListToolsResult, PaginatedRequestParams

    SDK2 = True
except ImportError:  # mcp 1.x
    from mcp import types as v1types
    from mcp.server.fastmcp import Context
    from mcp.server.fastmcp import FastMCP as MCPServer
    from mcp.shared.exceptions import McpError

    SDK2 = False

HOST = "127.0.0.1"


def build(replica: str, page_size: int | None, extra_tools: list[str] = ()) -> MCPServer:
    # 1.x's FastMCP decides DNS-rebinding protection from `host` at construction;
    # 2.x decides it in the app builders (host= below). Same defaults either way.
    mcp = MCPServer(f"fixture-{replica}", log_level="WARNING", **({} if SDK2 else {"host": HOST}))

    @mcp.tool()
    def echo(text: str) -> str:
        """Echo text back, tagged with the replica name (shows which upstream answered)."""
        return f"[{replica}] {text}"

    @mcp.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @mcp.tool()
    def whoami(ctx: Context) -> str:
        """The replica name and the MCP session id this server sees for the request."""
        # A JSON string, not a dict, so both SDK majors render the same text.
        return json.dumps({"replica": replica, "session_id": _session_id(ctx)})

    @mcp.tool()
    def delete_user(user_id: str) -> str:
        """The 'dangerous' tool: ACL tests expect the gateway to deny it."""
        return f"deleted {user_id}"

    @mcp.tool()
    async def count(n: int, ctx: Context, pause: float = 0.05) -> str:
        """Send n progress notifications (pause seconds apart, 50 ms by default), then return 'counted n'."""
        for i in range(1, n + 1):
            await ctx.report_progress(i, n, f"step {i}")
            await asyncio.sleep(pause)
        return f"counted {n}"

    # Tools some tests need to exist on one upstream and not on another.
    for name in extra_tools:
        mcp.tool(name=name, description=f"Extra tool {name}.")(lambda: "ran")

    # Filler tools so that --page-size 2 spreads tools/list over several pages.
    for letter in "abcde":
        mcp.tool(name=f"tool_{letter}", description=f"Trivial tool {letter}.")(lambda: "ok")

    @mcp.resource("config://app")
    def app_config() -> str:
        return "app-config"

    @mcp.resource("users://{user_id}/profile")
    def user_profile(user_id: str) -> str:
        return f"profile of {user_id}"

    @mcp.prompt()
    def greet(name: str) -> str:
        """Greet someone."""
        return f"Hello, {name}!"

    @mcp.custom_route("/headers", methods=["GET"])
    async def headers(request: Request) -> JSONResponse:
        # Raw pairs keep duplicates and order; the dict is for easy lookups.
        raw = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.scope["headers"]]
        return JSONResponse({"headers": {k: v for k, v in raw}, "raw": raw, "replica": replica})

    if page_size:
        _paginate_tools(mcp, page_size)
    return mcp


def _session_id(ctx: Context) -> str | None:
    """The session id as the transport saw it: Streamable HTTP puts it in the
    Mcp-Session-Id header, the legacy SSE transport in the POST's ?session_id=.
    Protocol 2026-07-28 has no session, hence None."""
    request = ctx.request_context.request
    if request is None:
        return None
    sid = request.headers.get("mcp-session-id")
    if sid is None and hasattr(request, "query_params"):
        sid = request.query_params.get("session_id")
    return sid


def _paginate_tools(mcp: MCPServer, page_size: int) -> None:
    """Replace tools/list with a paginated one: neither SDK's high-level server
    paginates, so the handler is swapped at the low-level server. The cursor is
    the decimal offset of the page's first tool."""

    def page(tools: list, cursor: str | None):
        try:
            start = int(cursor) if cursor is not None else 0
            if not 0 <= start <= len(tools):
                raise ValueError
        except ValueError:
            return None
        end = start + page_size
        return tools[start:end], (str(end) if end < len(tools) else None)

    if SDK2:

        async def list_tools(ctx, params: PaginatedRequestParams) -> ListToolsResult:
            got = page(await mcp.list_tools(), params.cursor)
            if got is None:
                raise MCPError(INVALID_PARAMS, f"Invalid cursor: {params.cursor!r}")
            return ListToolsResult(tools=got[0], next_cursor=got[1])

        mcp._lowlevel_server.add_request_handler("tools/list", PaginatedRequestParams, list_tools)
    else:
        # 1.x's low-level server calls the tools/list handler with None to fill the
        # cache it validates tools/call arguments against; the original handler
        # does that, so wrap it and only slice real requests.
        original = mcp._mcp_server.request_handlers[v1types.ListToolsRequest]

        async def list_tools_v1(req: v1types.ListToolsRequest | None) -> v1types.ServerResult:
            full = await original(req)
            if req is None:
                return full
            cursor = req.params.cursor if req.params else None
            got = page(full.root.tools, cursor)
            if got is None:
                raise McpError(v1types.ErrorData(code=v1types.INVALID_PARAMS, message=f"Invalid cursor: {cursor!r}"))
            return v1types.ServerResult(v1types.ListToolsResult(tools=got[0], nextCursor=got[1]))

        mcp._mcp_server.request_handlers[v1types.ListToolsRequest] = list_tools_v1


def build_app(mcp: MCPServer):
    """One Starlette app for both transports: the Streamable HTTP app (whose
    lifespan runs the session manager) plus the SSE app's /sse and /messages/
    routes. Custom routes (/headers) are in both apps; keep one copy."""
    kw = {"host": HOST} if SDK2 else {}
    app = mcp.streamable_http_app(**kw)
    sse = mcp.sse_app(**kw)
    custom = {getattr(r, "path", None) for r in mcp._custom_starlette_routes}
    app.router.routes.extend(r for r in sse.routes if getattr(r, "path", None) not in custom)
    return app


async def serve(app, port: int) -> None:
    # Bind the socket ourselves so --port 0 yields a real port we can print.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    real_port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # set once the lifespan ran and the socket listens
        if task.done():
            await task  # startup failed: surface the error
            return
        await asyncio.sleep(0.02)
    print(f"listening on {HOST}:{real_port}", flush=True)
    await task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--replica", default="r1")
    ap.add_argument("--page-size", type=int, default=None)
    ap.add_argument("--extra-tool", action="append", default=[], help="one more tool of this name")
    args = ap.parse_args()
    app = build_app(build(args.replica, args.page_size, args.extra_tool))
    try:
        asyncio.run(serve(app, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
