//! What the servers offer: a session opened with each, their tools,
//! prompts and resources merged (names prefixed as `tool_prefix` says),
//! tools filtered by the caller's tool ACL, and a call judged on the merged
//! name, then sent to its server under the server's name and relayed.

use pingora_proxy::Session;
use serde_json::{json, Value};
use tollgate_config::mcp_tools::ToolPrefix;
use tollgate_mcp::jsonrpc::{self, Inbound, Message, INVALID_PARAMS};
use tollgate_mcp::server::{self, federate};

use super::legacy;
use super::relay;
use super::reply::{json_answer, Failed};
use super::session::Sessions;
use super::upstream::{self, Post, Routing};
use crate::ctx::RequestCtx;
use crate::mcp::call::McpCall;
use crate::mcp::judge;
use crate::mcp::servers::ListenerServer;
use crate::upstream::Upstreams;

/// Pages of one server's tool list followed at most.
const MAX_PAGES: usize = 50;

/// One request of the gateway's own to a server, on either transport: its answer.
async fn ask(
    ups: &Upstreams,
    call: &McpCall<'_>,
    server: &ListenerServer,
    sessions: &Sessions,
    message: &Value,
    method: &str,
) -> Result<Value, String> {
    let session = sessions.of(&server.name).ok_or("no session")?;
    if server.legacy {
        return legacy::request(ups, call, server, session.unwrap_or_default(), message).await;
    }
    let body = message.to_string();
    let post = sessions.post(&server.name, body.as_bytes(), Routing { method, name: None }).ok_or("no session")?;
    let reply = upstream::exchange(ups, call, server, &post, message.get("id")).await?;
    Ok(reply.response.unwrap_or_default())
}

/// `initialize` with one server, then `notifications/initialized`: the
/// server's session id ("" when it keeps none).
pub(super) async fn open_server(
    ups: &Upstreams,
    call: &McpCall<'_>,
    server: &ListenerServer,
    params: &Value,
) -> Result<String, String> {
    if server.legacy {
        return legacy::open(ups, call, server, params).await;
    }
    let id = json!("tollgate-initialize");
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": params}).to_string();
    let post = Post {
        method: "POST",
        session: None,
        version: None,
        body: body.as_bytes(),
        streaming: false,
        routing: None,
        path: None,
    };
    let reply = upstream::exchange(ups, call, server, &post, Some(&id)).await?;
    let response = reply.response.unwrap_or_default();
    if response.get("error").is_some() {
        return Err(format!("initialize failed: {}", response["error"]));
    }
    let version = response.pointer("/result/protocolVersion").and_then(Value::as_str);
    let session = reply.session.unwrap_or_default();
    let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
    let sid = Some(session.as_str()).filter(|s| !s.is_empty());
    let post = Post {
        method: "POST",
        session: sid,
        version,
        body: done.as_bytes(),
        streaming: false,
        routing: None,
        path: None,
    };
    upstream::exchange(ups, call, server, &post, None).await?;
    Ok(session)
}

/// What the servers offer, each kind listed by its own method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Tools,
    Prompts,
    Resources,
    Templates,
}

impl Kind {
    fn method(self) -> &'static str {
        match self {
            Kind::Tools => "tools/list",
            Kind::Prompts => "prompts/list",
            Kind::Resources => "resources/list",
            Kind::Templates => "resources/templates/list",
        }
    }

    /// The result's field holding the items.
    fn key(self) -> &'static str {
        match self {
            Kind::Tools => "tools",
            Kind::Prompts => "prompts",
            Kind::Resources => "resources",
            Kind::Templates => "resourceTemplates",
        }
    }
}

/// Every server's items of `kind` now, merged: tools and prompts by name
/// (prefixed as `tool_prefix` says), resources by URI (the first server to
/// list one owns it). A server that does not answer adds none.
async fn merged(ups: &Upstreams, ctx: &mut RequestCtx, call: &McpCall<'_>, sessions: &Sessions, kind: Kind) -> Merged {
    let asked: Vec<(usize, &ListenerServer)> =
        call.mcp.servers.iter().enumerate().filter(|(_, s)| sessions.of(&s.name).is_some()).collect();
    // Every server at once: a list costs the slowest server's latency, not the sum.
    let answers = futures::future::join_all(asked.iter().map(|(_, s)| list_server(ups, call, s, sessions, kind))).await;
    let mut lists = Vec::new();
    for ((i, server), answer) in asked.into_iter().zip(answers) {
        match answer {
            Ok(items) => lists.push((i, server.name.as_str(), items)),
            // A server without prompts or resources answers -32601: only tools are worth a log line.
            Err(e) if kind == Kind::Tools => {
                ctx.note_error(&format!("MCP server {} did not list its tools: {e}", server.name))
            }
            Err(_) => {}
        }
    }
    let always = call.mcp.config.tool_prefix == ToolPrefix::Always;
    let (items, owners) = match kind {
        Kind::Tools | Kind::Prompts => federate::merge_named(&lists, always),
        Kind::Resources => federate::merge_by_key(&lists, "uri"),
        Kind::Templates => federate::merge_by_key(&lists, "uriTemplate"),
    };
    Merged { items, owners }
}

struct Merged {
    items: Vec<Value>,
    owners: Vec<federate::Owned>,
}

async fn list_server(
    ups: &Upstreams,
    call: &McpCall<'_>,
    server: &ListenerServer,
    sessions: &Sessions,
    kind: Kind,
) -> Result<Vec<Value>, String> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0..MAX_PAGES {
        let id = json!(format!("tollgate-list-{page}"));
        let mut params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        if let Some(meta) = &sessions.meta {
            params["_meta"] = meta.clone();
        }
        let message = json!({"jsonrpc": "2.0", "id": id, "method": kind.method(), "params": params});
        let answer = ask(ups, call, server, sessions, &message, kind.method()).await?;
        let (page_items, next) = federate::list_items(&answer, kind.key()).ok_or("its answer holds no list")?;
        items.extend(page_items);
        cursor = next;
        if cursor.is_none() {
            return Ok(items);
        }
    }
    Err(format!("its list runs past {MAX_PAGES} pages"))
}

/// A list request: the merged items, in one page; tools only those the
/// caller may use.
pub(super) async fn list(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    call: &McpCall<'_>,
    sessions: &Sessions,
    id: &Value,
    kind: Kind,
) -> Result<(), Failed> {
    let merged = merged(ups, ctx, call, sessions, kind).await;
    let subjects: Vec<&str> = call.subjects.iter().map(String::as_str).collect();
    let items: Vec<Value> = merged
        .items
        .into_iter()
        .zip(&merged.owners)
        .filter(|(_, o)| kind != Kind::Tools || permits_tool(call, o, &subjects))
        .map(|(t, _)| t)
        .collect();
    let mut result = serde_json::Map::new();
    result.insert(kind.key().into(), Value::Array(items));
    if sessions.stateless {
        // 2026-07-28 list results say how long a client may cache them: the
        // merged lists change with the servers, so not at all.
        result.insert("cacheScope".into(), json!("private"));
        result.insert("ttlMs".into(), json!(0));
    }
    let answer = jsonrpc::result_value(id, result);
    json_answer(session, ctx, if sessions.stateless { server::typed(answer) } else { answer }, None).await
}

/// `prompts/get` (by merged name) and `resources/read` (by URI): sent to
/// the server that listed it, the prompt under the server's own name.
pub(super) async fn get(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    call: &McpCall<'_>,
    sessions: &Sessions,
    message: &Value,
    kind: Kind,
) -> Result<(), Failed> {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let field = if kind == Kind::Prompts { "name" } else { "uri" };
    let wanted = message.get("params").and_then(|p| p.get(field)).and_then(Value::as_str).unwrap_or("");
    let merged = merged(ups, ctx, call, sessions, kind).await;
    let Some(owner) = merged.owners.iter().find(|o| o.exposed == wanted) else {
        let (code, what) = if kind == Kind::Prompts {
            (INVALID_PARAMS, "Unknown prompt")
        } else {
            (RESOURCE_NOT_FOUND, "Resource not found")
        };
        return json_answer(session, ctx, jsonrpc::error_value(&id, code, &format!("{what}: {wanted}")), None).await;
    };
    let mut forwarded = message.clone();
    let Some(params) = forwarded.get_mut("params").and_then(Value::as_object_mut) else {
        let e = jsonrpc::error_value(&id, INVALID_PARAMS, "Invalid params: params must be an object");
        return json_answer(session, ctx, e, None).await;
    };
    params.insert(field.into(), Value::String(owner.original.clone()));
    relay::call(ups, session, ctx, call, &call.mcp.servers[owner.server], sessions, &forwarded).await
}

/// MCP's error code for a resource no server has.
const RESOURCE_NOT_FOUND: i64 = -32002;

/// `tools/call`: judged on the merged name (ACL, limit, as in passthrough),
/// then sent to the tool's server under its own name.
pub(super) async fn call(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    call: &McpCall<'_>,
    sessions: &Sessions,
    message: &Value,
) -> Result<(), Failed> {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let Some(name) = message.pointer("/params/name").and_then(Value::as_str) else {
        let e = jsonrpc::error_value(&id, INVALID_PARAMS, "Invalid params: tools/call needs params.name");
        return json_answer(session, ctx, e, None).await;
    };
    if let Some(f) = ctx.mcp.as_mut() {
        f.tool = Some(name.to_string());
    }
    let merged = merged(ups, ctx, call, sessions, Kind::Tools).await;
    let owner = merged.owners.iter().find(|o| o.exposed == name);
    let subjects: Vec<&str> = call.subjects.iter().map(String::as_str).collect();
    if owner.is_none() && call.mcp.permits(name, &subjects) {
        answer_note(ctx, "unknown_tool");
        return json_answer(session, ctx, judge::unknown_tool(&id, name), None).await;
    }
    if owner.is_some_and(|o| !permits_tool(call, o, &subjects)) {
        answer_note(ctx, "denied");
        return json_answer(session, ctx, judge::unknown_tool(&id, name), None).await;
    }
    let one = Message::tool_call(id.clone(), name);
    let inbound = Inbound { messages: vec![one], batch: false };
    if let Some(refusal) = judge::calls(call.mcp, &inbound, &call.subjects, &call.who).await {
        answer_note(ctx, refusal.decision);
        let value = serde_json::from_slice(&refusal.body).unwrap_or(Value::Null);
        return json_answer(session, ctx, value, None).await;
    }
    let Some(owner) = owner else {
        return json_answer(session, ctx, judge::unknown_tool(&id, name), None).await;
    };
    let server = &call.mcp.servers[owner.server];
    let mut forwarded = message.clone();
    forwarded["params"]["name"] = Value::String(owner.original.clone());
    relay::call(ups, session, ctx, call, server, sessions, &forwarded).await
}

/// Whether the caller may use the tool `o`: under the name it is offered as
/// and under its stable `server_tool` name (see `federate::stable_name`).
fn permits_tool(call: &McpCall<'_>, o: &federate::Owned, subjects: &[&str]) -> bool {
    let stable = federate::stable_name(&call.mcp.servers[o.server].name, &o.original);
    call.mcp.permits(&o.exposed, subjects) && call.mcp.permits(&stable, subjects)
}

fn answer_note(ctx: &mut RequestCtx, decision: &'static str) {
    if let Some(f) = ctx.mcp.as_mut() {
        f.decision = decision;
    }
}
