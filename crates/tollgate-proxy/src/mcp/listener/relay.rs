//! A call's answer from its server, relayed to the client as it arrives:
//! JSON as it came, or SSE event by event (progress notifications pass as
//! they are, the server's own requests get an id tagged with the server, so
//! the client's answer finds its way back).

use std::time::Instant;

use bytes::Bytes;
use pingora_core::protocols::http::client::HttpSession;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;
use serde_json::{json, Map, Value};
use tollgate_mcp::server::{self, federate};
use tollgate_sse as sse;

use super::legacy;
use super::reply::{json_answer, Failed};
use super::session::Sessions;
use super::upstream::{self, Routing, Sent};
use crate::ctx::RequestCtx;
use crate::mcp::call::McpCall;
use crate::mcp::servers::ListenerServer;
use crate::upstream::{release, Upstreams};

/// Largest SSE event held while waiting for its end.
const MAX_EVENT: usize = 16 * 1024 * 1024;

/// Sends the (renamed) call to `server` and relays its answer.
pub(super) async fn call(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    call: &McpCall<'_>,
    server: &ListenerServer,
    sessions: &Sessions,
    message: &Value,
) -> Result<(), Failed> {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    if server.legacy {
        let sid = sessions.of(&server.name).flatten().unwrap_or_default();
        return legacy_call(ups, session, ctx, call, server, sid, message).await;
    }
    let body = message.to_string().into_bytes();
    let method = message.get("method").and_then(Value::as_str).unwrap_or("");
    let params = message.get("params");
    let name = params.and_then(|p| p.get("name").or_else(|| p.get("uri"))).and_then(Value::as_str);
    let Some(mut post) = sessions.post(&server.name, &body, Routing { method, name }) else {
        return unreachable(session, ctx, &id, "no session with the tool's server").await;
    };
    post.streaming = true;
    if let Some(f) = ctx.mcp.as_mut() {
        f.replica = Some(server.name.clone());
    }
    let at = Instant::now();
    let sent = upstream::send(ups, call, server, &post).await;
    let Ok(Sent { mut upstream, peer }) = sent.map_err(|e| ctx.note_error(&format!("MCP server {e}"))) else {
        return unreachable(session, ctx, &id, "the tool's server could not be reached").await;
    };
    let complete = relay(session, ctx, &server.name, &mut upstream).await;
    if let Some(f) = ctx.mcp.as_mut() {
        f.latency = Some(at.elapsed());
    }
    if let Ok(true) = complete {
        release(ups, upstream, &peer).await;
    }
    complete.map(|_| ()).map_err(Failed::Write)
}

/// A call to a legacy server: POSTed to its endpoint, and what its stream
/// says about the call (progress, the server's requests, the answer)
/// relayed to the client as SSE until the answer.
async fn legacy_call(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    call: &McpCall<'_>,
    server: &ListenerServer,
    sid: &str,
    message: &Value,
) -> Result<(), Failed> {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    if let Some(f) = ctx.mcp.as_mut() {
        f.replica = Some(server.name.clone());
    }
    let at = Instant::now();
    let sent = legacy::send(ups, call, server, sid, message).await;
    let Ok(mut waiting) = sent.map_err(|e| ctx.note_error(&format!("MCP server {}: {e}", server.name))) else {
        return unreachable(session, ctx, &id, "the tool's server could not be reached").await;
    };
    let mut resp = ResponseHeader::build(200, Some(4))?;
    resp.insert_header("content-type", "text/event-stream")?;
    resp.insert_header("cache-control", "no-cache")?;
    resp.insert_header("x-request-id", ctx.request_id.as_str())?;
    if !session.is_http2() {
        resp.insert_header("transfer-encoding", "chunked")?;
    }
    ctx.status = 200;
    session.write_response_header(Box::new(resp), false).await?;
    loop {
        tokio::select! {
            biased;
            next = waiting.rx.recv() => {
                let Some(mut m) = next else {
                    ctx.note_error("MCP server's stream ended before its answer");
                    break;
                };
                let answer = m.get("method").is_none() && m.get("id") == Some(&id);
                if let (Some(_), Some(sid)) = (m.get("method"), m.get("id").cloned()) {
                    m["id"] = federate::tag_id(&server.name, &sid);
                }
                session.write_response_body(Some(legacy::event(&m)), false).await?;
                if answer {
                    break;
                }
            }
            _ = session.read_body_or_idle(true) => {
                session.set_keepalive(None);
                ctx.note_error("client went away mid-stream");
                return Ok(());
            }
        }
    }
    if let Some(f) = ctx.mcp.as_mut() {
        f.latency = Some(at.elapsed());
    }
    Ok(session.write_response_body(None, true).await?)
}

/// A tool error for a call whose server is gone: the model reads it.
async fn unreachable(session: &mut Session, ctx: &mut RequestCtx, id: &Value, why: &str) -> Result<(), Failed> {
    if let Some(f) = ctx.mcp.as_mut() {
        f.decision = "error";
    }
    let mut result = Map::new();
    result.insert("content".into(), json!([{"type": "text", "text": why}]));
    result.insert("isError".into(), Value::Bool(true));
    json_answer(session, ctx, server::call_result(id, result), None).await
}

/// The answer passed on; `Ok(true)` when it was read to its end.
async fn relay(
    session: &mut Session,
    ctx: &mut RequestCtx,
    server: &str,
    upstream: &mut HttpSession,
) -> pingora_error::Result<bool> {
    let Some(head) = upstream.response_header() else {
        return Ok(false);
    };
    let status = head.status.as_u16();
    let content_type = head.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let is_sse = content_type.starts_with("text/event-stream");
    let mut resp = ResponseHeader::build(status, Some(4))?;
    resp.insert_header("content-type", content_type.to_string())?;
    resp.insert_header("x-request-id", ctx.request_id.as_str())?;
    if is_sse {
        resp.insert_header("cache-control", "no-cache")?;
    }
    if !session.is_http2() {
        resp.insert_header("transfer-encoding", "chunked")?;
    }
    if let Some(f) = ctx.mcp.as_mut() {
        f.upstream_status = Some(status);
    }
    ctx.status = status;
    session.write_response_header(Box::new(resp), false).await?;
    pump(session, ctx, server, upstream, is_sse).await
}

async fn pump(
    session: &mut Session,
    ctx: &mut RequestCtx,
    server: &str,
    upstream: &mut HttpSession,
    is_sse: bool,
) -> pingora_error::Result<bool> {
    let mut events = is_sse.then(sse::EventSplitter::default);
    loop {
        tokio::select! {
            // The answer's own progress first (as the passthrough relay does).
            biased;
            chunk = upstream.read_response_body() => match chunk {
                Ok(Some(bytes)) => {
                    let out = match events.as_mut() {
                        Some(split) => retag(split, server, &bytes),
                        None => Some(bytes),
                    };
                    let Some(out) = out else {
                        ctx.note_error("MCP server sent an SSE event over 16 MiB");
                        session.write_response_body(None, true).await?;
                        return Ok(false);
                    };
                    if !out.is_empty() {
                        session.write_response_body(Some(out), false).await?;
                    }
                }
                Ok(None) => {
                    session.write_response_body(None, true).await?;
                    return Ok(true);
                }
                Err(e) => {
                    ctx.note_error(&format!("MCP server's answer broke off: {e}"));
                    session.write_response_body(None, true).await?;
                    return Ok(false);
                }
            },
            _ = session.read_body_or_idle(true) => {
                // The client left (or sent a next request mid-answer): dropping
                // the server's connection tells it the call's stream is gone.
                session.set_keepalive(None);
                ctx.note_error("client went away mid-stream");
                return Ok(false);
            }
        }
    }
}

/// The complete events of a chunk, the server's requests among them with
/// tagged ids; `None` once an unfinished event grows past `MAX_EVENT`.
fn retag(split: &mut sse::EventSplitter, server: &str, chunk: &[u8]) -> Option<Bytes> {
    split.push(chunk);
    let mut out = Vec::new();
    while let Some(event) = split.next_event() {
        match sse::event_data(&event).and_then(|d| federate::tag_server_request(server, &d)) {
            Some(data) => out.extend_from_slice(&sse::with_data(&event, &data)),
            None => out.extend_from_slice(&event),
        }
    }
    (split.buffered() <= MAX_EVENT).then(|| Bytes::from(out))
}
