//! A conversion tool's call as an HTTP request to the route's service,
//! through the one upstream client: the service's URL (its path before the
//! tool's), TLS settings and timeouts, and the plugin's injected credential.
//! The caller's own credential never goes: the request is built from the
//! tool's arguments only.

use std::time::Duration;

use bytes::Bytes;
use pingora_http::RequestHeader;
use serde_json::{json, Map, Value};
use tollgate_mcp::server::rest::RestRequest;

use crate::mcp::call::McpCall;
use crate::mcp::forward::base_path;
use crate::passthrough::join_paths;
use crate::upstream::{peer_for, read_body, release, send_on, Endpoint, HeaderError, Timeouts, Upstreams};

/// Largest answer turned into a tool result.
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;
/// Steps without a service timeout of their own.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A call that got no HTTP answer: what the log keeps, and what the caller reads.
pub(super) struct Failure {
    pub cause: String,
    message: &'static str,
}

impl Failure {
    /// A tool error: the model reads it, without the service's address.
    pub fn result(&self) -> Map<String, Value> {
        let mut result = Map::new();
        result.insert("content".into(), json!([{"type": "text", "text": self.message}]));
        result.insert("isError".into(), Value::Bool(true));
        result
    }
}

/// Sends `req` to the route's service: the answer's status and body.
pub(super) async fn call(
    ups: &Upstreams,
    call: &McpCall<'_>,
    req: &RestRequest,
    request_id: &str,
) -> Result<(u16, Bytes), Failure> {
    let Some(ep) = call.service_upstream else {
        return Err(Failure {
            cause: "conversion route's service has no url".into(),
            message: "the tool's service is not configured",
        });
    };
    let t = Timeouts {
        connect: call.timeouts.connect.unwrap_or(DEFAULT_TIMEOUT),
        read: call.timeouts.read.unwrap_or(DEFAULT_TIMEOUT),
        write: call.timeouts.write.unwrap_or(DEFAULT_TIMEOUT),
    };
    let unreachable = |e: String| Failure { cause: e, message: "the tool's service could not be reached" };
    let addr = ups.resolver.resolve(&ep.host, ep.port).await.map_err(|e| unreachable(format!("{}: {e}", ep.host)))?;
    let mut peer = peer_for(addr, ep, &t);
    call.tls.apply(&mut peer);
    let path = join_paths(base_path(ep), &req.path_and_query);
    let body = req.body.as_deref().unwrap_or_default();
    let build = || header(call, ep, req, &path, request_id);
    let mut session = send_on(ups, &peer, body, &t, &build)
        .await
        .map_err(|e| unreachable(format!("REST tool upstream {}: {e}", ep.authority)))?;
    let status = session.response_header().map(|h| h.status.as_u16()).unwrap_or(502);
    let answer = read_body(&mut session, MAX_ANSWER_BYTES).await.map_err(|e| Failure {
        cause: format!("REST tool answer from {}: {e}", ep.authority),
        message: "the tool's service sent an answer that could not be read (over 8 MiB, or cut short)",
    })?;
    release(ups, session, &peer).await;
    Ok((status, answer))
}

fn header(
    call: &McpCall<'_>,
    ep: &Endpoint,
    req: &RestRequest,
    path: &str,
    request_id: &str,
) -> Result<RequestHeader, HeaderError> {
    let e = HeaderError::from;
    let mut h = RequestHeader::build(req.method, path.as_bytes(), Some(req.headers.len() + 7)).map_err(e)?;
    for (name, value) in &req.headers {
        h.append_header(name.clone(), value.as_str()).map_err(e)?;
    }
    h.insert_header("host", ep.authority.as_str()).map_err(e)?;
    h.insert_header("accept", "application/json").map_err(e)?;
    match &req.body {
        Some(b) => {
            h.insert_header("content-type", "application/json").map_err(e)?;
            h.insert_header("content-length", b.len().to_string()).map_err(e)?;
        }
        None if matches!(req.method, "POST" | "PUT" | "PATCH") => h.insert_header("content-length", "0").map_err(e)?,
        None => {}
    }
    h.insert_header("x-request-id", request_id).map_err(e)?;
    if let Some(t) = &call.traceparent {
        h.insert_header("traceparent", t.as_str()).map_err(e)?;
    }
    if let Some((name, value)) = &call.mcp.upstream_auth {
        h.insert_header(name.clone(), value.clone()).map_err(e)?;
    }
    Ok(h)
}
