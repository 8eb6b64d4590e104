//! Requests to one aggregated MCP server (Streamable HTTP): a POST with its
//! session, and its answer read whole for the gateway's own use (the
//! JSON-RPC response with the id asked for, from JSON or an SSE stream).

use std::time::Duration;

use bytes::Bytes;
use pingora_core::protocols::http::client::HttpSession;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::RequestHeader;
use serde_json::Value;
use tollgate_sse as sse;

use crate::mcp::call::McpCall;
use crate::mcp::servers::ListenerServer;
use crate::mcp::session::SESSION_HEADER;
use crate::upstream::{peer_for, read_body, release, send_on, HeaderError, Timeouts, Upstreams};

/// Steps of the gateway's own requests (initialize, lists) without a
/// service timeout: a server that hangs costs the client this, not forever.
const OWN_STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read whole (a tool list, an initialize result).
const MAX_OWN_ANSWER: usize = 16 * 1024 * 1024;

/// A request to a server, its answer's header read.
pub(super) struct Sent {
    pub upstream: HttpSession,
    pub peer: HttpPeer,
}

/// One POST (or DELETE) to `server`: the client's protocol version and the
/// server's own session id, if any.
pub(super) struct Post<'a> {
    pub method: &'a str,
    pub session: Option<&'a str>,
    pub version: Option<&'a str>,
    pub body: &'a [u8],
    /// Relayed calls wait as long as a stream may stay silent.
    pub streaming: bool,
    /// Protocol 2026-07-28's routing headers: `Mcp-Method`, `Mcp-Name`.
    pub routing: Option<Routing<'a>>,
    /// Another path than the server's URL's (a legacy server's messages).
    pub path: Option<&'a str>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Routing<'a> {
    pub method: &'a str,
    pub name: Option<&'a str>,
}

pub(super) async fn send(
    ups: &Upstreams,
    call: &McpCall<'_>,
    server: &ListenerServer,
    post: &Post<'_>,
) -> Result<Sent, String> {
    let ep = &server.endpoint;
    let own = |d: Option<Duration>| d.unwrap_or(OWN_STEP_TIMEOUT);
    let read = match post.streaming {
        true => call.timeouts.read.unwrap_or(Duration::from_millis(call.mcp.config.stream_read_timeout)),
        false => own(call.timeouts.read),
    };
    let t = Timeouts { connect: own(call.timeouts.connect), read, write: own(call.timeouts.write) };
    let addr = ups.resolver.resolve(&ep.host, ep.port).await.map_err(|e| format!("{}: {e}", ep.host))?;
    let mut peer = peer_for(addr, ep, &t);
    call.tls.apply(&mut peer);
    let build = || header(call, server, post);
    let upstream = send_on(ups, &peer, post.body, &t, &build).await.map_err(|e| format!("{}: {e}", server.name))?;
    Ok(Sent { upstream, peer })
}

fn header(call: &McpCall<'_>, server: &ListenerServer, post: &Post<'_>) -> Result<RequestHeader, HeaderError> {
    let e = HeaderError::from;
    let ep = &server.endpoint;
    let path = post.path.unwrap_or(&ep.path_and_query);
    let mut h = RequestHeader::build(post.method, path.as_bytes(), Some(8)).map_err(e)?;
    h.insert_header("host", ep.authority.as_str()).map_err(e)?;
    h.insert_header("accept", "application/json, text/event-stream").map_err(e)?;
    if post.method == "POST" {
        h.insert_header("content-type", "application/json").map_err(e)?;
        h.insert_header("content-length", post.body.len().to_string()).map_err(e)?;
    }
    if let Some(id) = post.session {
        h.insert_header(SESSION_HEADER, id).map_err(e)?;
    }
    if let Some(v) = post.version {
        h.insert_header("mcp-protocol-version", v).map_err(e)?;
    }
    if let Some(r) = post.routing.filter(|r| !r.method.is_empty()) {
        h.insert_header("mcp-method", r.method).map_err(e)?;
        if let Some(name) = r.name {
            h.insert_header("mcp-name", name).map_err(e)?;
        }
    }
    if let Some(t) = &call.traceparent {
        h.insert_header("traceparent", t.as_str()).map_err(e)?;
    }
    if let Some((name, value)) = &server.auth {
        h.insert_header(name.clone(), value.clone()).map_err(e)?;
    }
    Ok(h)
}

/// What a request of the gateway's own got: the server's session id (from
/// an `initialize`), and the JSON-RPC response to `id` (`None` for a
/// notification's 202).
pub(super) struct Reply {
    pub session: Option<String>,
    pub response: Option<Value>,
}

/// Sends a request of the gateway's own and reads its answer whole.
pub(super) async fn exchange(
    ups: &Upstreams,
    call: &McpCall<'_>,
    server: &ListenerServer,
    post: &Post<'_>,
    id: Option<&Value>,
) -> Result<Reply, String> {
    let Sent { mut upstream, peer } = send(ups, call, server, post).await?;
    let head = upstream.response_header().ok_or("no answer header")?;
    let status = head.status.as_u16();
    let session = head.headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
    let sse = head
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/event-stream"));
    let body = read_body(&mut upstream, MAX_OWN_ANSWER).await.map_err(|e| format!("{}: {e}", server.name))?;
    release(ups, upstream, &peer).await;
    if !(200..300).contains(&status) {
        return Err(format!("{} answered HTTP {status}", server.name));
    }
    let response = match id {
        Some(id) => Some(response_to(&body, sse, id).ok_or_else(|| format!("{} sent no answer to {id}", server.name))?),
        None => None,
    };
    Ok(Reply { session, response })
}

/// The JSON-RPC response to `id` in a JSON body or an SSE stream.
fn response_to(body: &Bytes, sse: bool, id: &Value) -> Option<Value> {
    let is_it = |v: &Value| v.get("id") == Some(id) && v.get("method").is_none();
    if !sse {
        return serde_json::from_slice::<Value>(body).ok().filter(is_it);
    }
    let mut split = sse::EventSplitter::default();
    split.push(body);
    split.push(b"\n\n");
    while let Some(event) = split.next_event() {
        let found = sse::event_data(&event).and_then(|d| serde_json::from_slice::<Value>(&d).ok()).filter(is_it);
        if found.is_some() {
            return found;
        }
    }
    None
}
