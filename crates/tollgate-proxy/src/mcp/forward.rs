//! The request to the MCP server: its path on the replica, its headers (the
//! caller's, less those of one connection and the credential, plus the
//! gateway's), and the connection it goes on.

use std::time::{Duration, Instant};

use pingora_core::protocols::http::client::HttpSession;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::RequestHeader;
use tollgate_mcp::events::EventId;

use super::answer::{Step, Stop};
use super::call::McpCall;
use super::session::{Target, SESSION_HEADER};
use crate::passthrough::join_paths;
use crate::upstream::{peer_for, send_on, Endpoint, HeaderError, Timeouts, UpstreamError, Upstreams};

/// Headers that describe one connection, never forwarded (RFC 9110 7.6.1),
/// and the ones the gateway sets itself.
pub(super) const NOT_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "content-length",
    "host",
    SESSION_HEADER,
    // The answer is inspected: it must come uncompressed.
    "accept-encoding",
    "x-request-id",
];

/// One request to the server, as the client sent it.
pub(super) struct Outgoing<'a> {
    pub client: &'a RequestHeader,
    pub method: &'a str,
    pub body: &'a [u8],
    pub request_id: &'a str,
}

/// A request sent: its connection, with the answer's header read.
pub(super) struct Sent {
    pub upstream: HttpSession,
    /// The peer the connection may be pooled for.
    pub peer: HttpPeer,
    /// When the request went out (the server's latency counts from here).
    pub at: Instant,
}

/// Sends the request to the target's replica.
pub(super) async fn send(ups: &Upstreams, call: &McpCall<'_>, target: &Target, out: &Outgoing<'_>) -> Step<Sent> {
    let ep = &target.replica.endpoint;
    let path = upstream_path(call, ep, target.query.as_deref());
    let t = Timeouts {
        connect: call.timeouts.connect.unwrap_or(Duration::from_secs(60)),
        read: call.timeouts.read.unwrap_or(Duration::from_millis(call.mcp.config.stream_read_timeout)),
        write: call.timeouts.write.unwrap_or(Duration::from_secs(60)),
    };
    let addr = match ups.resolver.resolve(&ep.host, ep.port).await {
        Ok(a) => a,
        Err(e) => return Err(Stop::error("error", 502, format!("upstream {} could not be resolved: {e}", ep.host))),
    };
    let mut peer = peer_for(addr, ep, &t);
    call.tls.apply(&mut peer);
    let build = || upstream_header(out, &path, ep, call, target.header_session());
    let at = Instant::now();
    match send_on(ups, &peer, out.body, &t, &build).await {
        Ok(upstream) => Ok(Sent { upstream, peer, at }),
        Err(e) => {
            let (status, msg) = match e {
                UpstreamError::Timeout(_) => (504, "The upstream server is timing out"),
                _ => (502, "An invalid response was received from the upstream server"),
            };
            let mut stop = Stop::error("error", status, msg);
            // The cause is what the log keeps; the client reads the status.
            stop.cause = Some(format!("MCP upstream {}: {e:?}", target.replica.label));
            Err(stop)
        }
    }
}

/// The replica's base path, the client's path (its route prefix stripped
/// when the route says so), and the query.
fn upstream_path(call: &McpCall<'_>, ep: &Endpoint, query: Option<&str>) -> String {
    let rest = if call.strip_path { &call.path[call.prefix_len..] } else { call.path.as_str() };
    let mut path = join_paths(base_path(ep), rest);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        path.push('?');
        path.push_str(q);
    }
    path
}

/// The path of the replica's URL, without its query.
pub(super) fn base_path(ep: &Endpoint) -> &str {
    ep.path_and_query.split('?').next().unwrap_or("/")
}

fn upstream_header(
    out: &Outgoing<'_>,
    path: &str,
    ep: &Endpoint,
    call: &McpCall<'_>,
    upstream_session: Option<&str>,
) -> Result<RequestHeader, HeaderError> {
    let e = HeaderError::from;
    let client = out.client;
    let mut h = RequestHeader::build(out.method, path.as_bytes(), Some(client.headers.len() + 4)).map_err(e)?;
    let hidden = call.hide_header.as_deref();
    let oauth = call.mcp.config.oauth.is_some() && !call.mcp.config.forward_client_credentials;
    for (name, value) in client.headers.iter() {
        let n = name.as_str();
        if NOT_FORWARDED.contains(&n) || hidden.is_some_and(|x| x.eq_ignore_ascii_case(n)) {
            continue;
        }
        if oauth && n == "authorization" {
            continue;
        }
        // The gateway's own event ids mean nothing to the server: a stream
        // the event log could not resume starts afresh there.
        if n == "last-event-id" && value.to_str().ok().and_then(EventId::parse).is_some() {
            continue;
        }
        h.append_header(name.clone(), value.clone()).map_err(e)?;
    }
    let host = if call.preserve_host {
        client.headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or(ep.authority.as_str())
    } else {
        ep.authority.as_str()
    };
    h.insert_header("host", host).map_err(e)?;
    if !out.body.is_empty() || out.method == "POST" {
        h.insert_header("content-length", out.body.len().to_string()).map_err(e)?;
    }
    if let Some(id) = upstream_session {
        h.insert_header(SESSION_HEADER, id).map_err(e)?;
    }
    h.insert_header("x-request-id", out.request_id).map_err(e)?;
    if let Some(t) = &call.traceparent {
        h.insert_header("traceparent", t.as_str()).map_err(e)?;
    }
    if let Some((name, value)) = &call.mcp.upstream_auth {
        h.insert_header(name.clone(), value.clone()).map_err(e)?;
    }
    Ok(h)
}
