//! `listener` mode: the gateway's own MCP server in front of several
//! (Streamable HTTP) servers. `initialize` opens a session with each server
//! that answers, and the client's session id seals their session ids
//! (`session_secret`), so any gateway replica serves any session;
//! `tools/list` merges what each server lists now (a server that is down
//! loses only its own tools); a `tools/call` goes to the tool's server under
//! the server's name for it, and its answer (JSON, or an SSE stream with
//! progress notifications and the server's requests) is relayed; the
//! client's answers to those requests go back to the server that asked.
//!
//! ```text
//! mod       the request dispatched
//! session   the client's session: the servers' sessions sealed into its id
//! reply     the listener's own answers
//! catalog   tools, prompts and resources merged, listed, called and read
//! relay     a server's answer to a call, relayed to the client
//! upstream  one request to one server
//! legacy    legacy HTTP+SSE servers: their streams held in this process
//! ```

mod catalog;
mod legacy;
mod relay;
mod reply;
mod session;
mod upstream;

use bytes::Bytes;
use pingora_proxy::Session;
use serde_json::{json, Value};
use tollgate_mcp::jsonrpc::{self, INVALID_REQUEST};
use tollgate_mcp::server::{self, federate};

use self::catalog::Kind;
use self::reply::{accepted, json_answer, Failed};
use self::session as session_of;
use self::session::{open, Sessions, LABEL};
use self::upstream::{Post, Routing};
use crate::ctx::{McpFacts, RequestCtx};
use crate::mcp::answer::{self, Stop};
use crate::mcp::call::McpCall;
use crate::respond::{send, PResult};
use crate::upstream::Upstreams;

const SERVER_NAME: &str = "tollgate";

pub(in crate::mcp) async fn serve(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    call: McpCall<'_>,
) -> PResult<()> {
    let method = session.req_header().method.as_str().to_string();
    ctx.mcp = Some(McpFacts { method: method.clone(), decision: "allowed", ..McpFacts::default() });
    let done = match method.as_str() {
        "POST" => post(ups, session, ctx, &call).await,
        "DELETE" => delete(ups, session, ctx, &call).await,
        _ => return get_not_allowed(session, ctx).await,
    };
    match done {
        Ok(()) => Ok(()),
        Err(Failed::Stop(stop)) => answer::stop(session, ctx, stop).await,
        Err(Failed::Write(e)) => Err(e),
    }
}

async fn post(ups: &Upstreams, session: &mut Session, ctx: &mut RequestCtx, call: &McpCall<'_>) -> Result<(), Failed> {
    let body = call.read_body(session, ctx.body_deadline()).await?;
    let (mut messages, batch) = server::messages(&body).map_err(|e| Stop::jsonrpc("invalid", 400, e.body()))?;
    if batch || messages.len() != 1 {
        let body = jsonrpc::error_body(&Value::Null, INVALID_REQUEST, "Invalid Request: this server takes no batches");
        return Err(Stop::jsonrpc("invalid", 400, body).into());
    }
    let message = messages.remove(0);
    let method = message.get("method").and_then(Value::as_str).map(str::to_string);
    if let Some(f) = ctx.mcp.as_mut() {
        f.method = method.clone().unwrap_or_else(|| "response".into());
    }
    let stateless = session_of::stateless_version(session);
    if method.as_deref() == Some("initialize") && stateless.is_none() {
        return initialize(ups, session, ctx, call, &message).await;
    }
    let sessions = match &stateless {
        Some(version) => session_of::stateless(call, version, &message),
        None => open(session, call)?,
    };
    dispatch(ups, session, ctx, call, &sessions, &message, &body).await
}

/// What the gateway offers: the servers' tools, prompts and resources.
fn capabilities() -> Value {
    json!({"tools": {"listChanged": false}, "prompts": {"listChanged": false}, "resources": {}})
}

/// A request of an open session (or a 2026-07-28 one), by its method.
async fn dispatch(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    call: &McpCall<'_>,
    sessions: &Sessions,
    message: &Value,
    body: &[u8],
) -> Result<(), Failed> {
    let method = message.get("method").and_then(Value::as_str);
    let id = message.get("id").cloned();
    let typed = |v: Value| if sessions.stateless { server::typed(v) } else { v };
    match (method, id) {
        (Some("ping"), Some(id)) => json_answer(session, ctx, typed(server::ping_result(&id)), None).await,
        (Some("server/discover"), Some(id)) if sessions.stateless => {
            json_answer(session, ctx, server::discover_result(&id, SERVER_NAME, capabilities()), None).await
        }
        (Some("tools/list"), Some(id)) => catalog::list(ups, session, ctx, call, sessions, &id, Kind::Tools).await,
        (Some("prompts/list"), Some(id)) => catalog::list(ups, session, ctx, call, sessions, &id, Kind::Prompts).await,
        (Some("resources/list"), Some(id)) => {
            catalog::list(ups, session, ctx, call, sessions, &id, Kind::Resources).await
        }
        (Some("resources/templates/list"), Some(id)) => {
            catalog::list(ups, session, ctx, call, sessions, &id, Kind::Templates).await
        }
        (Some("tools/call"), Some(_)) => catalog::call(ups, session, ctx, call, sessions, message).await,
        (Some("prompts/get"), Some(_)) => catalog::get(ups, session, ctx, call, sessions, message, Kind::Prompts).await,
        (Some("resources/read"), Some(_)) => {
            catalog::get(ups, session, ctx, call, sessions, message, Kind::Resources).await
        }
        (Some(_), None) => notify_all(ups, session, ctx, call, sessions, body).await,
        (None, Some(id)) => answer_server(ups, session, ctx, call, sessions, message, &id).await,
        (Some(other), Some(id)) => {
            let e = jsonrpc::error_value(&id, -32601, &format!("Method not found: {other}"));
            json_answer(session, ctx, e, None).await
        }
        (None, None) => accepted(session, ctx).await,
    }
}

/// `initialize`: a session with every server that answers, sealed into the
/// client's session id.
async fn initialize(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    call: &McpCall<'_>,
    message: &Value,
) -> Result<(), Failed> {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let params = message.get("params").cloned().unwrap_or_else(|| json!({}));
    let asked = params.get("protocolVersion").and_then(Value::as_str).unwrap_or("");
    // Every server at once: a slow one costs the client its own latency, not the sum.
    let opened =
        futures::future::join_all(call.mcp.servers.iter().map(|s| catalog::open_server(ups, call, s, &params)));
    let mut by_server = Vec::new();
    for (server, result) in call.mcp.servers.iter().zip(opened.await) {
        match result {
            Ok(id) => by_server.push((server.name.clone(), id)),
            Err(e) => ctx.note_error(&format!("MCP server {} did not initialize: {e}", server.name)),
        }
    }
    let Some(sealed) = call.mcp.seal(LABEL, &federate::encode_sessions(&by_server)) else {
        return Err(Stop::error(
            "error",
            500,
            "could not seal the MCP session id (sealed ids are at most 1024 characters)",
        )
        .into());
    };
    let result = server::initialize_result(&id, server::negotiate(asked), SERVER_NAME, capabilities());
    json_answer(session, ctx, result, Some(&sealed)).await
}

/// A notification goes to every server of the session (the gateway sent
/// `notifications/initialized` itself).
async fn notify_all(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    call: &McpCall<'_>,
    sessions: &Sessions,
    body: &[u8],
) -> Result<(), Failed> {
    let method = ctx.mcp.as_ref().map(|f| f.method.clone()).unwrap_or_default();
    let initialized = method == "notifications/initialized";
    for server in call.mcp.servers.iter().filter(|_| !initialized) {
        if let (true, Some(Some(id))) = (server.legacy, sessions.of(&server.name)) {
            let message: Value = serde_json::from_slice(body).unwrap_or_default();
            let _ = legacy::notify(ups, call, server, id, &message).await;
            continue;
        }
        let routing = Routing { method: &method, name: None };
        if let Some(post) = sessions.post(&server.name, body, routing) {
            let _ = upstream::exchange(ups, call, server, &post, None).await;
        }
    }
    accepted(session, ctx).await
}

/// The client's answer to a server's request (sampling, elicitation): to
/// the server whose tagged id it carries, under the server's own id.
async fn answer_server(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    call: &McpCall<'_>,
    sessions: &Sessions,
    message: &Value,
    id: &Value,
) -> Result<(), Failed> {
    let Some((name, original)) = federate::untag_id(id) else {
        return accepted(session, ctx).await;
    };
    let mut message = message.clone();
    message["id"] = original;
    let body = message.to_string().into_bytes();
    let server = call.mcp.servers.iter().find(|s| s.name == name);
    let routing = Routing { method: "", name: None };
    if let (Some(server), Some(Some(sid))) = (server.filter(|s| s.legacy), sessions.of(&name)) {
        let _ = legacy::notify(ups, call, server, sid, &message).await;
        return accepted(session, ctx).await;
    }
    if let (Some(server), Some(post)) = (server, sessions.post(&name, &body, routing)) {
        if let Err(e) = upstream::exchange(ups, call, server, &post, None).await {
            ctx.note_error(&format!("MCP server {name} did not take the client's answer: {e}"));
        }
    }
    accepted(session, ctx).await
}

/// DELETE: the client ends its session, and so the gateway ends the servers'.
async fn delete(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    call: &McpCall<'_>,
) -> Result<(), Failed> {
    let sessions = open(session, call)?;
    for server in &call.mcp.servers {
        if let (true, Some(Some(id))) = (server.legacy, sessions.of(&server.name)) {
            legacy::close(id);
        } else if let Some(Some(id)) = sessions.of(&server.name) {
            let post = Post {
                method: "DELETE",
                session: Some(id),
                version: None,
                body: b"",
                streaming: false,
                routing: None,
                path: None,
            };
            let _ = upstream::exchange(ups, call, server, &post, None).await;
        }
    }
    ctx.status = 200;
    let headers = [("x-request-id", ctx.request_id.as_str())];
    Ok(send(session, 200, "application/json", Bytes::new(), &headers).await?)
}

/// GET (the server-to-client stream): the servers' own streams are not
/// merged, so there is nothing to push; 405, as Streamable HTTP allows.
async fn get_not_allowed(session: &mut Session, ctx: &mut RequestCtx) -> PResult<()> {
    answer::note(ctx, "invalid");
    ctx.status = 405;
    let headers = [("allow", "POST, DELETE"), ("x-request-id", ctx.request_id.as_str())];
    let body = crate::respond::kong_error_body("this MCP server takes POST and DELETE only");
    send(session, 405, "application/json", body, &headers).await
}
