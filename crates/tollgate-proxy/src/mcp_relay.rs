//! The MCP exchange, owned by the gateway like the LLM one: the JSON-RPC body
//! is read and judged before any upstream is contacted (whatever its size:
//! Pingora's 64 KiB retry buffer never applies), the session's replica is
//! found from its sealed id, and the answer (JSON or SSE) is relayed as it
//! arrives, with `tools/list` results filtered and session ids sealed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pingora_core::protocols::http::client::HttpSession;
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;
use once_cell::sync::Lazy;
use serde_json::Value;
use tokio::sync::mpsc;
use tollgate_mcp::jsonrpc::{self, Inbound, HEADER_MISMATCH};
use tollgate_mcp::{filter, legacy};
use tollgate_sse as sse;

use crate::body::{read_bounded, BodyError};
use crate::ctx::{McpFacts, RequestCtx};
use crate::mcp::{ConsumerIdentifier, McpRt, Replica, ToolAdmission};
use crate::passthrough::{join_paths, query_without_key};
use crate::pipeline::Admitted;
use crate::respond::{kong_error_body, send, PResult};
use crate::snapshot::{PeerTimeouts, Snapshot};
use crate::upstream::tls::UpstreamTls;
use crate::upstream::{peer_for, release, send_on, Endpoint, Timeouts, UpstreamError, Upstreams};

/// Largest JSON answer buffered to filter a tool list, and largest SSE event
/// held while waiting for its end (16 MiB each).
const MAX_LIST_ANSWER: usize = 16 * 1024 * 1024;
const MAX_EVENT: usize = 16 * 1024 * 1024;
const SESSION_HEADER: &str = "mcp-session-id";
/// Headers that describe one connection, never forwarded (RFC 9110 7.6.1),
/// and the ones the gateway sets itself.
const NOT_FORWARDED: &[&str] = &[
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

/// One MCP request, as routed.
pub(crate) struct McpCall<'a> {
    pub mcp: &'a McpRt,
    pub service_upstream: Option<&'a Endpoint>,
    pub timeouts: PeerTimeouts,
    pub tls: &'a UpstreamTls,
    /// The client's path, and the length of the route prefix it matched.
    pub path: &'a str,
    pub prefix_len: usize,
    pub strip_path: bool,
    pub preserve_host: bool,
    /// The query without the caller's credential.
    pub query: Option<String>,
    /// The caller's credential header, removed unless forwarding is configured.
    pub hide_header: Option<String>,
    /// ACL subjects: the consumer's name and groups.
    pub subjects: Vec<String>,
    /// Whom per-tool limits count: the consumer, else the client IP.
    pub who: String,
    /// The gateway's own trace context (opentelemetry plugin), replacing the caller's.
    pub traceparent: Option<String>,
}

/// Serves a request on an MCP route, with what the pipeline learned of its caller.
pub(crate) async fn serve_route(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    snap: &Snapshot,
    mcp: &McpRt,
    a: &Admitted<'_>,
) -> PResult<()> {
    let service = &snap.services[a.routed.service];
    let r = &snap.router.routes[a.routed.route];
    let consumer = ctx.consumer.map(|c| &snap.consumers[c]);
    let token_subject = a.credentials.token_subject.clone();
    let mut subjects: Vec<String> = Vec::new();
    if let Some(c) = consumer {
        let name = match mcp.consumer_identifier {
            ConsumerIdentifier::CustomId => c.custom_id.clone(),
            ConsumerIdentifier::Username => Some(c.name.clone()),
        };
        subjects.extend(name);
        subjects.extend(c.groups.iter().cloned());
    }
    subjects.extend(token_subject.clone());
    let who = match (consumer, &token_subject) {
        (Some(c), _) => format!("consumer:{}", c.name),
        (None, Some(sub)) => format!("token:{sub}"),
        (None, None) => format!(
            "ip:{}",
            session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip().to_string()).unwrap_or_default()
        ),
    };
    let path = session.req_header().uri.path().to_string();
    let call = McpCall {
        mcp,
        service_upstream: service.upstream.as_ref(),
        timeouts: service.timeouts,
        tls: &service.tls,
        path: &path,
        prefix_len: a.routed.prefix_len,
        strip_path: r.strip_path,
        preserve_host: r.preserve_host,
        query: query_without_key(session.req_header().uri.query(), a.credentials.hidden_query.as_deref()),
        hide_header: a.credentials.hide_header.clone(),
        subjects,
        who,
        traceparent: ctx.span.as_ref().map(|s| s.outgoing().header()),
    };
    serve_mcp(ups, session, ctx, call).await
}

pub(crate) async fn serve_mcp(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    call: McpCall<'_>,
) -> PResult<()> {
    let mcp = call.mcp;
    let method = session.req_header().method.as_str().to_string();
    ctx.mcp = Some(McpFacts { method: method.clone(), decision: "allowed", ..McpFacts::default() });
    // MCP's transports use these three; anything else could carry a body the
    // gateway does not judge.
    if !matches!(method.as_str(), "POST" | "GET" | "DELETE") {
        note(ctx, "invalid");
        let headers = [("allow", "GET, POST, DELETE"), ("x-request-id", ctx.request_id.as_str())];
        ctx.status = 405;
        return send(session, 405, "application/json", kong_error_body("MCP routes take GET, POST and DELETE"), &headers).await;
    }

    let body = match read_bounded(session, mcp.config.max_request_body_size).await {
        Ok(b) => b,
        Err(e) => {
            let (status, msg) = match e {
                BodyError::TooLarge { limit } => (
                    413,
                    format!("request body is larger than the limit of {limit} bytes (ai-mcp-proxy max_request_body_size)"),
                ),
                BodyError::Read(_) => (400, e.message()),
            };
            note(ctx, "invalid");
            return answer_error(session, ctx, status, &msg).await;
        }
    };

    let mut inbound: Option<Inbound> = None;
    if method == "POST" {
        let parsed = match jsonrpc::parse(&body) {
            Ok(p) => p,
            Err(e) => {
                note(ctx, "invalid");
                return answer_jsonrpc(session, ctx, 400, e.body()).await;
            }
        };
        if let Some(f) = ctx.mcp.as_mut() {
            f.method = parsed.messages.first().and_then(|m| m.method.clone()).unwrap_or_else(|| "response".into());
            if parsed.batch {
                f.method = "batch".into();
            }
            f.tool = parsed.tool_calls().filter_map(|m| m.tool.clone()).next();
        }
        if let Some(mismatch) = header_mismatch(session.req_header(), &parsed) {
            note(ctx, "invalid");
            let id = parsed.messages.first().and_then(|m| m.id.clone()).unwrap_or(Value::Null);
            return answer_jsonrpc(session, ctx, 400, jsonrpc::error_body(&id, HEADER_MISMATCH, &mismatch)).await;
        }
        inbound = Some(parsed);
    }

    // The replica: the session's own, else the next one.
    let replicas = mcp.replicas(call.service_upstream);
    let legacy_session = call.query.as_deref().and_then(|q| legacy::query_param(q, "session_id"));
    let client_session = session
        .req_header()
        .headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // The server's own session id, whichever transport carried the sealed one.
    let (replica_ix, upstream_id, upstream_query) = match client_session.as_deref().or(legacy_session) {
        Some(sealed) => match mcp.open(sealed) {
            Some((label, id)) => {
                let ix = match &label {
                    Some(l) => replicas.iter().position(|r| &r.label == l),
                    None => mcp.pick_new(&replicas),
                };
                let Some(ix) = ix else {
                    note(ctx, "unknown_session");
                    return session_not_found(session, ctx).await;
                };
                let query = match (&call.query, client_session.is_none()) {
                    (Some(q), true) => Some(legacy::map_query_param(q, "session_id", &|_| Some(id.clone()))),
                    (q, _) => q.clone(),
                };
                (ix, Some(id), query)
            }
            None => {
                note(ctx, "unknown_session");
                return session_not_found(session, ctx).await;
            }
        },
        None => match mcp.pick_new(&replicas) {
            Some(ix) => (ix, None, call.query.clone()),
            None => {
                note(ctx, "error");
                return answer_error(session, ctx, 500, "this MCP route has no upstream: give its service a url or the plugin targets").await;
            }
        },
    };
    let replica = &replicas[replica_ix];
    if let Some(f) = ctx.mcp.as_mut() {
        f.replica = Some(replica.label.clone());
    }

    if let Some(parsed) = &inbound {
        // Revision 2026-07-28 made `resultType` a required field of results.
        let typed_results = session
            .req_header()
            .headers
            .get("mcp-protocol-version")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v >= "2026-07-28");
        if let Some(refusal) = judge_calls(mcp, parsed, &call, typed_results).await {
            note(ctx, refusal.decision);
            // The legacy transport answers on its SSE stream, not on the POST:
            // the refusal goes there when this gateway holds that stream.
            if client_session.is_none() {
                if let Some(id) = upstream_id.as_deref() {
                    if inject_legacy(&replica.label, id, &refusal.body).await {
                        ctx.status = 202;
                        let headers = [("x-request-id", ctx.request_id.as_str())];
                        return send(session, 202, "text/plain", Bytes::from_static(b"Accepted"), &headers).await;
                    }
                }
            }
            let retry_after = refusal.retry_after.map(|s| s.to_string());
            let mut headers = Vec::new();
            if let Some(r) = &retry_after {
                headers.push(("retry-after", r.as_str()));
            }
            return answer_jsonrpc_with(session, ctx, 200, refusal.body, &headers).await;
        }
    }

    let ep = &replica.endpoint;
    let base = ep.path_and_query.split('?').next().unwrap_or("/");
    let rest = if call.strip_path { &call.path[call.prefix_len..] } else { call.path };
    let mut path = join_paths(base, rest);
    if let Some(q) = upstream_query.filter(|q| !q.is_empty()) {
        path.push('?');
        path.push_str(&q);
    }
    let t = Timeouts {
        connect: call.timeouts.connect.unwrap_or(Duration::from_secs(60)),
        read: call.timeouts.read.unwrap_or(Duration::from_millis(mcp.config.stream_read_timeout)),
        write: call.timeouts.write.unwrap_or(Duration::from_secs(60)),
    };
    let addr = match ups.resolver.resolve(&ep.host, ep.port).await {
        Ok(a) => a,
        Err(e) => {
            note(ctx, "error");
            let msg = format!("upstream {} could not be resolved: {e}", ep.host);
            return answer_error(session, ctx, 502, &msg).await;
        }
    };
    let mut peer = peer_for(addr, ep, &t);
    call.tls.apply(&mut peer);
    let client_header = session.req_header().clone();
    let build = || {
        // The legacy transport carries its session in the query, not a header.
        let header_session = client_session.as_ref().and(upstream_id.as_deref());
        upstream_header(&client_header, &method, &path, ep, &call, header_session, body.len(), &ctx.request_id)
    };
    let sent_at = Instant::now();
    let mut upstream = match send_on(ups, &peer, &body, &t, &build).await {
        Ok(s) => s,
        Err(e) => {
            note(ctx, "error");
            let (status, msg) = match e {
                UpstreamError::Timeout(_) => (504, "The upstream server is timing out"),
                _ => (502, "An invalid response was received from the upstream server"),
            };
            ctx.note_error(&format!("MCP upstream {}: {e:?}", replica.label));
            return answer_error(session, ctx, status, msg).await;
        }
    };

    let relay = Relay {
        mcp,
        replica,
        subjects: &call.subjects,
        filter: mcp.filters_lists(),
        client_prefix: &call.path[..call.prefix_len],
        strip_path: call.strip_path,
        base,
    };
    let lists_tools = inbound.as_ref().is_some_and(Inbound::lists_tools);
    let complete = relay.run(session, ctx, &mut upstream, lists_tools).await;
    if let Some(f) = ctx.mcp.as_mut() {
        f.latency = Some(sent_at.elapsed());
    }
    match complete {
        Ok(true) => {
            release(ups, upstream, &peer).await;
            Ok(())
        }
        Ok(false) => Ok(()),
        Err(e) => Err(e),
    }
}

/// MCP 2026-07-28 routes by `Mcp-Method` and `Mcp-Name` headers; the gateway
/// judges the body, so a header that says otherwise is refused rather than
/// letting a router downstream act on a different name than the ACL saw.
fn header_mismatch(h: &RequestHeader, inbound: &Inbound) -> Option<String> {
    let get = |n: &str| h.headers.get(n).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let first = inbound.messages.first()?;
    if let Some(m) = get("mcp-method") {
        if inbound.batch || first.method.as_deref() != Some(m) {
            return Some("Mcp-Method header does not match the request body".into());
        }
    }
    if let (Some(n), true) = (get("mcp-name"), first.is_tool_call()) {
        if inbound.batch || first.tool.as_deref() != Some(n) {
            return Some("Mcp-Name header does not match the request body's params.name".into());
        }
    }
    None
}

/// A body the gateway answers itself, with JSON-RPC answers for its requests.
struct Refusal {
    decision: &'static str,
    body: Vec<u8>,
    retry_after: Option<u64>,
}

/// Refuses a body that calls a tool the caller may not use, or one past its
/// limit. MCP clients read JSON-RPC answers, so both are HTTP 200 with an
/// answer per request (a limit adds Retry-After).
async fn judge_calls(mcp: &McpRt, inbound: &Inbound, call: &McpCall<'_>, typed_results: bool) -> Option<Refusal> {
    let subjects: Vec<&str> = call.subjects.iter().map(String::as_str).collect();
    let denied = |m: &jsonrpc::Message| m.tool.as_deref().is_some_and(|t| !mcp.permits(t, &subjects));
    if inbound.tool_calls().any(denied) {
        let answers: Vec<Value> = inbound
            .messages
            .iter()
            .filter_map(|m| {
                let id = m.id.as_ref()?;
                Some(if denied(m) {
                    unknown_tool(id, m.tool.as_deref().unwrap_or(""), typed_results)
                } else {
                    jsonrpc::error_value(id, jsonrpc::INVALID_REQUEST, "Request not processed: its batch was refused")
                })
            })
            .collect();
        return Some(Refusal { decision: "denied", body: batch_or_single(inbound, answers), retry_after: None });
    }
    for m in inbound.tool_calls() {
        let tool = m.tool.as_deref().unwrap_or("");
        if let ToolAdmission::Refused { retry_after_secs, limit, window_secs } = mcp.admit_call(tool, &call.who).await {
            let message = if limit > 0 {
                format!("Rate limit exceeded for tool {tool}: {limit} calls per {window_secs} s; retry in {retry_after_secs} s")
            } else {
                format!("Rate limit for tool {tool} cannot be checked; retry in {retry_after_secs} s")
            };
            let answers: Vec<Value> = inbound
                .messages
                .iter()
                .filter_map(|x| x.id.as_ref().map(|id| jsonrpc::error_value(id, RATE_LIMITED, &message)))
                .collect();
            return Some(Refusal {
                decision: "limited",
                body: batch_or_single(inbound, answers),
                retry_after: Some(retry_after_secs),
            });
        }
    }
    None
}

/// JSON-RPC implementation-defined server error used for per-tool limits.
const RATE_LIMITED: i64 = -32029;

fn batch_or_single(inbound: &Inbound, answers: Vec<Value>) -> Vec<u8> {
    match (inbound.batch, answers.into_iter().collect::<Vec<_>>()) {
        (false, mut one) if one.len() == 1 => one.remove(0).to_string().into_bytes(),
        (_, all) => Value::Array(all).to_string().into_bytes(),
    }
}

/// What MCP servers (the Python SDK's among them) answer for a tool they do
/// not have: a tool result flagged as an error, so a denied tool cannot be
/// told apart from a missing one.
fn unknown_tool(id: &Value, tool: &str, typed: bool) -> Value {
    let mut result = serde_json::Map::new();
    result.insert("content".into(), serde_json::json!([{"type": "text", "text": format!("Unknown tool: {tool}")}]));
    result.insert("isError".into(), Value::Bool(true));
    if typed {
        result.insert("resultType".into(), Value::String("complete".into()));
    }
    jsonrpc::result_value(id, result)
}

/// Live legacy SSE streams relayed by this process, by (replica, server's
/// session id): where the gateway's own answers to that session's POSTs go.
static LEGACY_STREAMS: Lazy<Mutex<HashMap<String, mpsc::Sender<Bytes>>>> = Lazy::new(|| Mutex::new(HashMap::new()));

fn legacy_key(replica: &str, id: &str) -> String {
    format!("{replica}|{id}")
}

/// Sends JSON-RPC answers down a legacy session's stream, one event each;
/// false when this process does not relay that stream.
async fn inject_legacy(replica: &str, id: &str, body: &[u8]) -> bool {
    let tx = LEGACY_STREAMS.lock().ok().and_then(|m| m.get(&legacy_key(replica, id)).cloned());
    let Some(tx) = tx else {
        return false;
    };
    let messages = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items,
        Ok(one) => vec![one],
        Err(_) => return false,
    };
    for m in messages {
        let event = Bytes::from(format!("event: message\ndata: {m}\n\n"));
        if tx.send(event).await.is_err() {
            return false;
        }
    }
    true
}

/// Removes a legacy stream from the registry when its relay ends.
struct LegacyStream(String);

impl Drop for LegacyStream {
    fn drop(&mut self) {
        if let Ok(mut m) = LEGACY_STREAMS.lock() {
            m.remove(&self.0);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn upstream_header(
    client: &RequestHeader,
    method: &str,
    path: &str,
    ep: &Endpoint,
    call: &McpCall<'_>,
    upstream_session: Option<&str>,
    body_len: usize,
    request_id: &str,
) -> Result<RequestHeader, String> {
    let e = |e: Box<pingora_error::Error>| e.to_string();
    let mut h = RequestHeader::build(method, path.as_bytes(), Some(client.headers.len() + 4)).map_err(e)?;
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
        h.append_header(name.clone(), value.clone()).map_err(e)?;
    }
    let host = if call.preserve_host {
        client.headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or(ep.authority.as_str())
    } else {
        ep.authority.as_str()
    };
    h.insert_header("host", host).map_err(e)?;
    if body_len > 0 || method == "POST" {
        h.insert_header("content-length", body_len.to_string()).map_err(e)?;
    }
    if let Some(id) = upstream_session {
        h.insert_header(SESSION_HEADER, id).map_err(e)?;
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

/// How an answer is passed on.
struct Relay<'a> {
    mcp: &'a McpRt,
    replica: &'a Replica,
    subjects: &'a [String],
    filter: bool,
    /// The route prefix the client used, and whether it was stripped: the
    /// legacy `endpoint` event's path is mapped back through them.
    client_prefix: &'a str,
    strip_path: bool,
    base: &'a str,
}

impl Relay<'_> {
    /// Relays the answer; `Ok(true)` when it was read to its end (the
    /// connection may be pooled).
    async fn run(&self, session: &mut Session, ctx: &mut RequestCtx, upstream: &mut HttpSession, lists_tools: bool) -> PResult<bool> {
        let Some(head) = upstream.response_header() else {
            return answer_error(session, ctx, 502, "An invalid response was received from the upstream server").await.map(|_| false);
        };
        let status = head.status.as_u16();
        let content_type = head
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let sse = content_type.starts_with("text/event-stream");
        let buffer_json = !sse && self.filter && lists_tools && content_type.starts_with("application/json");
        let length = head.headers.get("content-length").cloned();
        let mut resp = ResponseHeader::build(status, Some(head.headers.len() + 2))?;
        for (name, value) in head.headers.iter() {
            let n = name.as_str();
            if NOT_FORWARDED.contains(&n) {
                continue;
            }
            resp.append_header(name.clone(), value.clone())?;
        }
        if let Some(id) = head.headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
            match self.mcp.seal(&self.replica.label, id) {
                Some(sealed) => resp.insert_header(SESSION_HEADER, sealed)?,
                None => return answer_error(session, ctx, 500, "could not seal the MCP session id").await.map(|_| false),
            }
        }
        resp.insert_header("x-request-id", ctx.request_id.as_str())?;
        for (k, v) in &ctx.response_headers {
            resp.append_header(k.clone(), v.as_str())?;
        }
        if let Some(f) = ctx.mcp.as_mut() {
            f.upstream_status = Some(status);
        }
        ctx.status = status;

        if buffer_json {
            let body = match crate::upstream::read_all(upstream).await {
                Ok(b) if b.len() <= MAX_LIST_ANSWER => b,
                _ => return answer_error(session, ctx, 502, "An invalid response was received from the upstream server").await.map(|_| false),
            };
            let body = self.filtered(&body).map(Bytes::from).unwrap_or(body);
            resp.insert_header("content-length", body.len().to_string())?;
            session.write_response_header(Box::new(resp), false).await?;
            session.write_response_body(Some(body), true).await?;
            return Ok(true);
        }
        match (&length, sse) {
            (Some(l), false) => resp.insert_header("content-length", l.clone())?,
            _ if !session.is_http2() => resp.insert_header("transfer-encoding", "chunked")?,
            _ => {}
        }
        session.write_response_header(Box::new(resp), false).await?;

        let mut events = sse.then(sse::EventSplitter::default);
        let mut injected: Option<mpsc::Receiver<Bytes>> = None;
        let mut _registered: Option<LegacyStream> = None;
        loop {
            tokio::select! {
                // The answer's own progress first: once it is complete the
                // client may already be sending its next request, which the
                // idle probe below must not touch.
                biased;
                event = async {
                    match injected.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Some(event) = event {
                        if let Err(e) = session.write_response_body(Some(event), false).await {
                            ctx.note_error("client went away mid-stream");
                            return Err(e);
                        }
                    }
                }
                chunk = upstream.read_response_body() => match chunk {
                    Ok(Some(bytes)) => {
                        let out = match events.as_mut() {
                            Some(split) => match next_events(split, &bytes) {
                                Some(list) => {
                                    let (out, legacy_id) = self.rewrite_events(list);
                                    if let Some(id) = legacy_id {
                                        let key = legacy_key(&self.replica.label, &id);
                                        let (tx, rx) = mpsc::channel(16);
                                        if let Ok(mut m) = LEGACY_STREAMS.lock() {
                                            m.insert(key.clone(), tx);
                                        }
                                        injected = Some(rx);
                                        _registered = Some(LegacyStream(key));
                                    }
                                    out
                                }
                                None => {
                                    ctx.note_error("MCP server sent an SSE event over 16 MiB");
                                    session.write_response_body(None, true).await?;
                                    return Ok(false);
                                }
                            },
                            None => bytes,
                        };
                        if !out.is_empty() {
                            if let Err(e) = session.write_response_body(Some(out), false).await {
                                ctx.note_error("client went away mid-stream");
                                return Err(e);
                            }
                        }
                    }
                    Ok(None) => {
                        let rest = events.as_mut().map(|s| s.take_rest()).filter(|r| !r.is_empty());
                        session.write_response_body(rest, true).await?;
                        return Ok(true);
                    }
                    Err(e) => {
                        ctx.note_error(&format!("MCP server's answer broke off: {e}"));
                        session.write_response_body(None, true).await?;
                        return Ok(false);
                    }
                },
                _ = session.read_body_or_idle(true) => {
                    // The client hung up (dropping the upstream connection
                    // tells the server the stream is gone), or sent bytes of
                    // a next request, one of which the probe consumed: either
                    // way this connection cannot carry another request.
                    session.set_keepalive(None);
                    ctx.note_error("client went away mid-stream");
                    return Ok(false);
                }
            }
        }
    }

    /// Events out, each as it came unless it lists tools (filtered) or is the
    /// legacy transport's `endpoint` (path and session id rewritten; the
    /// server's session id is returned).
    fn rewrite_events(&self, events: Vec<Bytes>) -> (Bytes, Option<String>) {
        let mut out = Vec::with_capacity(events.iter().map(Bytes::len).sum());
        let mut legacy_id = None;
        for event in events {
            if sse::event_name(&event) == b"endpoint" {
                if let Some(data) = sse::event_data(&event).and_then(|d| String::from_utf8(d.into_owned()).ok()) {
                    legacy_id = data
                        .split_once('?')
                        .and_then(|(_, q)| legacy::query_param(q, "session_id"))
                        .map(str::to_string);
                    let map = |p: &str| self.client_path(p);
                    let seal = |id: &str| self.mcp.seal(&self.replica.label, id);
                    let new = legacy::rewrite_endpoint(&data, &map, &seal);
                    out.extend_from_slice(&sse::with_data(&event, new.as_bytes()));
                    continue;
                }
            }
            if self.filter {
                if let Some(new) = sse::event_data(&event).and_then(|d| self.filtered(&d)) {
                    out.extend_from_slice(&sse::with_data(&event, &new));
                    continue;
                }
            }
            out.extend_from_slice(&event);
        }
        (Bytes::from(out), legacy_id)
    }

    fn filtered(&self, body: &[u8]) -> Option<Vec<u8>> {
        let subjects: Vec<&str> = self.subjects.iter().map(String::as_str).collect();
        filter::filter_tools(body, &|tool| self.mcp.permits(tool, &subjects))
    }

    /// The client's path for an upstream path: the replica's base removed,
    /// the route prefix put back when the route strips it.
    fn client_path(&self, upstream_path: &str) -> String {
        let rest = match upstream_path.strip_prefix(self.base.trim_end_matches('/')) {
            Some(r) if self.base != "/" && (r.is_empty() || r.starts_with('/')) => r,
            _ => upstream_path,
        };
        if self.strip_path {
            join_paths(self.client_prefix, rest)
        } else {
            rest.to_string()
        }
    }
}

/// The complete events a chunk finishes; `None` once an unfinished event
/// grows past `MAX_EVENT`.
fn next_events(split: &mut sse::EventSplitter, chunk: &[u8]) -> Option<Vec<Bytes>> {
    split.push(chunk);
    let mut out = Vec::new();
    while let Some(e) = split.next_event() {
        out.push(e);
    }
    (split.buffered() <= MAX_EVENT).then_some(out)
}

fn note(ctx: &mut RequestCtx, decision: &'static str) {
    if let Some(f) = ctx.mcp.as_mut() {
        f.decision = decision;
    }
}

async fn answer_jsonrpc(session: &mut Session, ctx: &mut RequestCtx, status: u16, body: Vec<u8>) -> PResult<()> {
    answer_jsonrpc_with(session, ctx, status, body, &[]).await
}

async fn answer_jsonrpc_with(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: u16,
    body: Vec<u8>,
    extra: &[(&str, &str)],
) -> PResult<()> {
    ctx.status = status;
    let mut headers = vec![("x-request-id", ctx.request_id.as_str())];
    headers.extend_from_slice(extra);
    send(session, status, "application/json", Bytes::from(body), &headers).await
}

/// A transport-level error in Kong's shape (the MCP SDKs show the status).
async fn answer_error(session: &mut Session, ctx: &mut RequestCtx, status: u16, message: &str) -> PResult<()> {
    ctx.status = status;
    ctx.note_error(message);
    let headers = [("x-request-id", ctx.request_id.as_str())];
    send(session, status, "application/json", kong_error_body(message), &headers).await
}

/// MCP's answer for a session the server does not know: 404, upon which
/// clients start a new session.
async fn session_not_found(session: &mut Session, ctx: &mut RequestCtx) -> PResult<()> {
    let body = jsonrpc::error_body(&Value::Null, jsonrpc::INVALID_REQUEST, "Session not found");
    answer_jsonrpc(session, ctx, 404, body).await
}
