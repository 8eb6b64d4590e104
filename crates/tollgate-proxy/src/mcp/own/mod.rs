//! The gateway's own MCP server on an ai-mcp-proxy route
//! (`conversion-listener`): Streamable HTTP, stateless. A POST's JSON-RPC
//! messages are answered here, as JSON: `initialize`, `ping`, `tools/list`
//! (the caller's tools only) and `tools/call`, which the route's service
//! answers over HTTP (`rest`). Tool ACLs and limits are judged as in
//! passthrough (`judge`), and the request's facts feed the same metrics and
//! access-log section.
//!
//! ```text
//! mod   the POST: read, each message answered, the answers written
//! rest  a tool call as an HTTP request to the route's service
//! ```

mod rest;

use std::time::Instant;

use bytes::Bytes;
use pingora_proxy::Session;
use serde_json::Value;
use tollgate_mcp::jsonrpc::{Inbound, Message};
use tollgate_mcp::server::{self, Request};

use super::answer::{self, Step, Stop};
use super::call::McpCall;
use super::judge;
use crate::ctx::{McpFacts, RequestCtx};
use crate::respond::{send, PResult};
use crate::upstream::Upstreams;

/// The name the server gives itself in `initialize`.
const SERVER_NAME: &str = "tollgate";

/// Answers one request on a conversion route.
pub(in crate::mcp) async fn serve(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    call: McpCall<'_>,
) -> PResult<()> {
    let method = session.req_header().method.as_str().to_string();
    ctx.mcp = Some(McpFacts { method: method.clone(), decision: "allowed", ..McpFacts::default() });
    if method != "POST" {
        return post_only(session, ctx).await;
    }
    let (batch, messages) = match read(session, ctx, &call).await {
        Ok(read) => read,
        Err(stop) => return answer::stop(session, ctx, stop).await,
    };
    // Revision 2026-07-28 wants `resultType` in every result.
    let typed = judge::typed_results(session.req_header());
    let mut out = Answers::default();
    for m in &messages {
        out.push(answer(ups, ctx, &call, m, typed).await);
    }
    write(session, ctx, out, batch).await
}

/// The POST's messages, noted in the request's facts.
async fn read(session: &mut Session, ctx: &mut RequestCtx, call: &McpCall<'_>) -> Step<(bool, Vec<Value>)> {
    let body = call.read_body(session, ctx.body_deadline()).await?;
    let (messages, batch) = server::messages(&body).map_err(|e| Stop::jsonrpc("invalid", 400, e.body()))?;
    if let Some(f) = ctx.mcp.as_mut() {
        let first = messages.first().and_then(|m| m.get("method")).and_then(Value::as_str);
        f.method = if batch { "batch".into() } else { first.unwrap_or("response").to_string() };
    }
    Ok((batch, messages))
}

/// What one message gets: an answer, or nothing (notifications, responses).
#[derive(Default)]
struct Answers {
    values: Vec<Value>,
    /// The longest wait a limit asked for.
    retry_after: Option<u64>,
}

/// One answer, with the `Retry-After` a refused call asks for.
struct Answered {
    value: Option<Value>,
    retry_after: Option<u64>,
}

impl Answers {
    fn push(&mut self, a: Answered) {
        self.values.extend(a.value);
        self.retry_after = self.retry_after.max(a.retry_after);
    }
}

impl From<Value> for Answered {
    fn from(value: Value) -> Self {
        Answered { value: Some(value), retry_after: None }
    }
}

async fn answer(ups: &Upstreams, ctx: &mut RequestCtx, call: &McpCall<'_>, message: &Value, typed: bool) -> Answered {
    let capabilities = serde_json::json!({"tools": {"listChanged": false}});
    let typed_if = |v: Value| if typed { server::typed(v) } else { v };
    match server::read(message) {
        Request::Initialize { id, version } => {
            server::initialize_result(&id, &version, SERVER_NAME, capabilities).into()
        }
        Request::Discover { id } => server::discover_result(&id, SERVER_NAME, capabilities).into(),
        Request::Ping { id } => typed_if(server::ping_result(&id)).into(),
        Request::ListTools { id } => {
            let subjects: Vec<&str> = call.subjects.iter().map(String::as_str).collect();
            let tools = call.mcp.rest_tools.iter().filter(|t| call.mcp.permits(&t.name, &subjects));
            server::tools_list_result(&id, tools.map(|t| t.descriptor()).collect(), typed).into()
        }
        Request::CallTool { id, name, arguments } => {
            let mut answered = call_tool(ups, ctx, call, id, &name, &arguments).await;
            answered.value = answered.value.map(typed_if);
            answered
        }
        Request::NoAnswer => Answered { value: None, retry_after: None },
        Request::Error(e) => e.into(),
    }
}

/// A `tools/call`: judged (ACL, limit) as in passthrough, then made as an
/// HTTP request to the service. A tool the caller may not see and one that
/// does not exist get the same answer.
async fn call_tool(
    ups: &Upstreams,
    ctx: &mut RequestCtx,
    call: &McpCall<'_>,
    id: Value,
    name: &str,
    arguments: &serde_json::Map<String, Value>,
) -> Answered {
    note(ctx, |f| f.tool = Some(name.to_string()));
    let subjects: Vec<&str> = call.subjects.iter().map(String::as_str).collect();
    let tool = call.mcp.rest_tools.iter().find(|t| t.name == name);
    // An absent tool is answered as the judge answers a denied one, so a
    // caller cannot tell the two apart.
    if tool.is_none() && call.mcp.permits(name, &subjects) {
        note(ctx, |f| f.decision = "unknown_tool");
        return judge::unknown_tool(&id, name).into();
    }
    let one = Message::tool_call(id.clone(), name);
    let inbound = Inbound { messages: vec![one], batch: false };
    if let Some(refusal) = judge::calls(call.mcp, &inbound, &call.subjects, &call.who).await {
        note(ctx, |f| f.decision = refusal.decision);
        let value = serde_json::from_slice(&refusal.body).ok();
        return Answered { value, retry_after: refusal.retry_after };
    }
    let Some(tool) = tool else {
        return judge::unknown_tool(&id, name).into();
    };
    let request = match tool.request(arguments) {
        Ok(r) => r,
        Err(why) => {
            note(ctx, |f| f.decision = "invalid");
            return server::invalid_arguments(&id, name, &why).into();
        }
    };
    let at = Instant::now();
    let result = rest::call(ups, call, &request, &ctx.request_id).await;
    let latency = at.elapsed();
    note(ctx, |f| f.latency = Some(latency));
    match result {
        Ok((status, body)) => {
            note(ctx, |f| f.upstream_status = Some(status));
            server::call_result(&id, server::rest::tool_result(status, &body)).into()
        }
        Err(failure) => {
            note(ctx, |f| f.decision = "error");
            ctx.note_error(&failure.cause);
            server::call_result(&id, failure.result()).into()
        }
    }
}

fn note(ctx: &mut RequestCtx, f: impl FnOnce(&mut McpFacts)) {
    if let Some(facts) = ctx.mcp.as_mut() {
        f(facts);
    }
}

/// The answers as JSON (one, or a batch's array); 202 when nothing asked
/// for an answer.
async fn write(session: &mut Session, ctx: &mut RequestCtx, out: Answers, batch: bool) -> PResult<()> {
    let rid = ctx.request_id.clone();
    if out.values.is_empty() {
        ctx.status = 202;
        return send(session, 202, "text/plain", Bytes::new(), &[("x-request-id", rid.as_str())]).await;
    }
    let body = match (batch, out.values) {
        (false, mut one) if one.len() == 1 => one.remove(0),
        (_, all) => Value::Array(all),
    };
    let retry_after = out.retry_after.map(|s| s.to_string());
    let mut headers = vec![("x-request-id", rid.as_str())];
    if let Some(r) = &retry_after {
        headers.push(("retry-after", r.as_str()));
    }
    ctx.status = 200;
    send(session, 200, "application/json", Bytes::from(body.to_string()), &headers).await
}

/// GET (the server-to-client stream) and DELETE (ending a session): this
/// server has nothing to push and no sessions, so both get 405, as
/// Streamable HTTP lets such a server answer.
async fn post_only(session: &mut Session, ctx: &mut RequestCtx) -> PResult<()> {
    answer::note(ctx, "invalid");
    ctx.status = 405;
    let headers = [("allow", "POST"), ("x-request-id", ctx.request_id.as_str())];
    let body = crate::respond::kong_error_body("this MCP server takes JSON-RPC messages by POST only");
    send(session, 405, "application/json", body, &headers).await
}
