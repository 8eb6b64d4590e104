//! The MCP exchange, owned by the gateway like the LLM one: the JSON-RPC body
//! is read and judged before any upstream is contacted (whatever its size:
//! Pingora's 64 KiB retry buffer never applies), the session's replica is
//! found from its sealed id, and the answer (JSON or SSE) is relayed as it
//! arrives, with list results filtered and session ids sealed; a GET
//! resuming a stream kept in the event log is answered from the log.

use std::time::Duration;

use bytes::Bytes;
use pingora_http::RequestHeader;
use pingora_proxy::Session;
use serde_json::Value;
use tollgate_config::mcp_tools::McpMode;
use tollgate_mcp::jsonrpc::{self, Inbound, HEADER_MISMATCH};

use super::answer::{self, Answer, Step, Stop};
use super::call::McpCall;
use super::forward::{self, Outgoing, Sent};
use super::judge;
use super::listener;
use super::own;
use super::relay::Relay;
use super::resume::Resumption;
use super::session::{find_target, inject_legacy, Target, SESSION_HEADER};
use super::McpRt;
use crate::ctx::{McpFacts, RequestCtx};
use crate::pipeline::Admitted;
use crate::respond::PResult;
use crate::snapshot::Snapshot;
use crate::upstream::{release, Upstreams};

/// Serves a request on an MCP route, with what the pipeline learned of its caller.
pub(crate) async fn serve_route(
    ups: &Upstreams,
    session: &mut Session,
    ctx: &mut RequestCtx,
    snap: &Snapshot,
    mcp: &McpRt,
    a: &Admitted<'_>,
) -> PResult<()> {
    let call = McpCall::new(session, ctx, snap, mcp, a);
    match mcp.mode {
        McpMode::PassthroughListener => {}
        McpMode::Listener => return listener::serve(ups, session, ctx, call).await,
        McpMode::ConversionListener | McpMode::ConversionOnly => return own::serve(ups, session, ctx, call).await,
    }
    serve(ups, session, ctx, call).await
}

/// The exchange: the request judged (or answered here), sent to its
/// replica, and the server's answer relayed.
async fn serve(ups: &Upstreams, session: &mut Session, ctx: &mut RequestCtx, call: McpCall<'_>) -> PResult<()> {
    let method = session.req_header().method.as_str().to_string();
    ctx.mcp = Some(McpFacts { method: method.clone(), decision: "allowed", ..McpFacts::default() });
    let (body, inbound, target) = match prepare(session, ctx, &call, &method).await {
        Ok(prepared) => prepared,
        Err(stop) => return answer::stop(session, ctx, stop).await,
    };
    if let Some(resumed) = resume_from_log(session, ctx, &call, &target, &method).await {
        return resumed;
    }
    let out = Outgoing { client: session.req_header(), method: &method, body: &body, request_id: &ctx.request_id };
    let Sent { mut upstream, peer, at } = match forward::send(ups, &call, &target, &out).await {
        Ok(sent) => sent,
        Err(stop) => return answer::stop(session, ctx, stop).await,
    };
    let lists = inbound.as_ref().is_some_and(Inbound::lists_primitives);
    let relay = Relay::new(&call, &target.replica).in_session(target.header_session());
    let complete = relay.run(session, ctx, &mut upstream, lists).await;
    if let Some(f) = ctx.mcp.as_mut() {
        f.latency = Some(at.elapsed());
    }
    if let Ok(true) = complete {
        release(ups, upstream, &peer).await;
    }
    complete.map(|_| ())
}

/// A GET naming (in `Last-Event-ID`) an event of a stream in the plugin's
/// event log is answered from the log, whichever replica relayed the stream;
/// `None` sends it to the server as before.
async fn resume_from_log(
    session: &mut Session,
    ctx: &mut RequestCtx,
    call: &McpCall<'_>,
    target: &Target,
    method: &str,
) -> Option<PResult<()>> {
    let log = call.mcp.event_log.as_ref().filter(|_| method == "GET")?;
    let last = session.req_header().headers.get("last-event-id")?.to_str().ok()?.to_string();
    let resumption = Resumption::find(log, &target.replica.label, target.header_session()?, &last).await?;
    let idle = Duration::from_millis(call.mcp.config.stream_read_timeout);
    Some(resumption.serve(session, ctx, idle).await)
}

/// Everything decided before the server is asked: the method, the body
/// (read whole and, for a POST, parsed and judged) and the replica.
async fn prepare(
    session: &mut Session,
    ctx: &mut RequestCtx,
    call: &McpCall<'_>,
    method: &str,
) -> Step<(Bytes, Option<Inbound>, Target)> {
    // MCP's transports use these three; anything else could carry a body the
    // gateway does not judge.
    if !matches!(method, "POST" | "GET" | "DELETE") {
        return Err(Stop { decision: "invalid", answer: Answer::MethodNotAllowed, cause: None });
    }
    let body = call.read_body(session, ctx.body_deadline()).await?;
    let h = session.req_header();
    let inbound = if method == "POST" { Some(parse(h, ctx, &body)?) } else { None };
    // The replica: the session's own, else the next one.
    let header_session = h.headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());
    let target =
        find_target(call.mcp, call.mcp.replicas(call.service_upstream), header_session, call.query.as_deref())?;
    if let Some(f) = ctx.mcp.as_mut() {
        f.replica = Some(target.replica.label.clone());
    }
    if let Some(inbound) = &inbound {
        judge_calls(call, inbound, &target).await?;
    }
    Ok((body, inbound, target))
}

/// A POST's JSON-RPC messages, noted in the request's facts, and refused
/// when the routing headers name something else.
fn parse(h: &RequestHeader, ctx: &mut RequestCtx, body: &[u8]) -> Step<Inbound> {
    let parsed = jsonrpc::parse(body).map_err(|e| Stop::jsonrpc("invalid", 400, e.body()))?;
    if let Some(f) = ctx.mcp.as_mut() {
        f.method = parsed.messages.first().and_then(|m| m.method.clone()).unwrap_or_else(|| "response".into());
        if parsed.batch {
            f.method = "batch".into();
        }
        f.tool = parsed.tool_calls().filter_map(|m| m.tool.clone()).next();
    }
    if let Some(mismatch) = judge::header_mismatch(h, &parsed) {
        let id = parsed.messages.first().and_then(|m| m.id.clone()).unwrap_or(Value::Null);
        return Err(Stop::jsonrpc("invalid", 400, jsonrpc::error_body(&id, HEADER_MISMATCH, &mismatch)));
    }
    Ok(parsed)
}

/// Tool calls the caller may not make, or past their limit, are answered
/// here, with JSON-RPC answers.
async fn judge_calls(call: &McpCall<'_>, inbound: &Inbound, target: &Target) -> Step<()> {
    let Some(refusal) = judge::calls(call.mcp, inbound, &call.subjects, &call.who).await else {
        return Ok(());
    };
    // The legacy transport answers on its SSE stream, not on the POST: the
    // refusal goes there when this gateway holds that stream.
    if let Some(id) = target.legacy_session() {
        if inject_legacy(&target.replica.label, id, &refusal.body).await {
            return Err(Stop { decision: refusal.decision, answer: Answer::Accepted, cause: None });
        }
    }
    let answer = Answer::JsonRpc { status: 200, body: refusal.body, retry_after: refusal.retry_after };
    Err(Stop { decision: refusal.decision, answer, cause: None })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::pipeline::test_support::{config, ctx, key_auth_on, post_json, request, serve_fixed, snapshot, Answer};
    use crate::pipeline::{self, RouteKind};
    use crate::snapshot::{PluginRt, Slot};

    /// An MCP route `/tools` to `upstream` (`host:port`) with key-auth, a
    /// session secret, and a tool ACL: `delete_user` for admins only, the
    /// others for dev and admin.
    fn tools(upstream: &str) -> Arc<Snapshot> {
        let extra = format!(
            r#"
[[services]]
name = "tools"
url = "http://{upstream}/mcp"

[[routes]]
name = "tools"
service = "tools"
paths = ["/tools"]

[[plugins]]
name = "ai-mcp-proxy"
service = "tools"
[plugins.config]
session_secret = "an-mcp-session-secret-of-32-bytes"
default_acl = [{{ scope = "tools", allow = ["dev", "admin"] }}]
[[plugins.config.tools]]
name = "delete_user"
acl = {{ allow = ["admin"] }}

{}"#,
            key_auth_on("tools", "")
        );
        snapshot(&config(&extra))
    }

    /// `raw` through the pipeline, then the exchange: the answer and the context.
    async fn exchange(snap: &Arc<Snapshot>, raw: &str) -> (Answer, RequestCtx) {
        let (mut s, client) = request(raw).await;
        let mut ctx = ctx(snap);
        let rate = pingora_limits::rate::Rate::new(Duration::from_secs(3600));
        let admitted = pipeline::run(&rate, &mut s, &mut ctx, snap).await.unwrap_or_else(|e| panic!("admitted: {e:?}"));
        let RouteKind::Mcp(mcp) = &admitted.routed.kind else { panic!("an MCP route") };
        serve_route(&Upstreams::new(), &mut s, &mut ctx, snap, mcp, &admitted).await.expect("served");
        (client.answer(s).await.expect("answered"), ctx)
    }

    fn decision(ctx: &RequestCtx) -> &'static str {
        ctx.mcp.as_ref().map(|f| f.decision).unwrap_or("none")
    }

    const ALICE: &str = "apikey: alice-key";
    /// Nothing listens there: a request that reaches it is answered 502.
    const NOWHERE: &str = "127.0.0.1:9";

    #[tokio::test]
    async fn methods_outside_mcps_transports_are_405() {
        let snap = tools(NOWHERE);
        let raw = format!("PUT /tools HTTP/1.1\r\nhost: gw.test\r\n{ALICE}\r\ncontent-length: 2\r\n\r\n{{}}");
        let (a, ctx) = exchange(&snap, &raw).await;
        assert_eq!((a.status, a.header("allow")), (405, Some("GET, POST, DELETE")));
        assert_eq!(a.json(), serde_json::json!({"message": "MCP routes take GET, POST and DELETE"}));
        assert_eq!((decision(&ctx), ctx.status), ("invalid", 405));
    }

    #[tokio::test]
    async fn a_body_that_is_not_json_rpc_is_refused_in_json_rpc() {
        let snap = tools(NOWHERE);
        let (a, ctx) = exchange(&snap, &post_json("/tools", &[ALICE], "not json")).await;
        assert_eq!(a.status, 400);
        assert!(a.json()["error"]["code"].is_i64(), "{:?}", a.json());
        assert_eq!(decision(&ctx), "invalid");
    }

    #[tokio::test]
    async fn routing_headers_that_contradict_the_body_are_refused() {
        let snap = tools(NOWHERE);
        let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"}}"#;
        let (a, ctx) = exchange(&snap, &post_json("/tools", &[ALICE, "mcp-method: tools/list"], body)).await;
        assert_eq!(a.status, 400);
        assert_eq!((a.json()["id"].as_i64(), decision(&ctx)), (Some(7), "invalid"));
        assert_eq!(ctx.mcp.as_ref().and_then(|f| f.tool.as_deref()), Some("echo"));
    }

    #[tokio::test]
    async fn a_denied_tool_is_answered_here_as_an_unknown_one() {
        let snap = tools(NOWHERE);
        let body = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"delete_user"}}"#;
        let (a, ctx) = exchange(&snap, &post_json("/tools", &[ALICE], body)).await;
        assert_eq!(a.status, 200);
        assert_eq!(
            a.json(),
            serde_json::json!({"jsonrpc": "2.0", "id": 3, "error": {"code": -32602, "message": "Unknown tool: delete_user"}})
        );
        assert_eq!(decision(&ctx), "denied");
        assert_eq!(ctx.mcp.as_ref().and_then(|f| f.upstream_status), None, "the server was not asked");
    }

    #[tokio::test]
    async fn a_session_id_the_gateway_did_not_seal_is_404() {
        let snap = tools(NOWHERE);
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        let (a, ctx) = exchange(&snap, &post_json("/tools", &[ALICE, "mcp-session-id: forged"], body)).await;
        assert_eq!(a.status, 404);
        assert_eq!(a.json()["error"]["message"], "Session not found");
        assert_eq!(decision(&ctx), "unknown_session");
    }

    #[tokio::test]
    async fn a_server_that_cannot_be_reached_is_502_and_logged_with_its_cause() {
        let snap = tools(NOWHERE);
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        let (a, ctx) = exchange(&snap, &post_json("/tools", &[ALICE], body)).await;
        assert_eq!(a.status, 502);
        assert_eq!(a.json()["message"], "An invalid response was received from the upstream server");
        assert_eq!(decision(&ctx), "error");
        assert!(ctx.error.as_deref().is_some_and(|e| e.starts_with("MCP upstream service:")), "{:?}", ctx.error);
    }

    #[tokio::test]
    async fn a_tool_list_is_filtered_and_the_session_id_sealed() {
        let list = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo","inputSchema":{}},{"name":"delete_user","inputSchema":{}}]}}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nmcp-session-id: s-1\r\ncontent-length: {}\r\n\r\n{list}",
            list.len()
        );
        let server = serve_fixed(answer).await;
        let snap = tools(&server.to_string());
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        let (a, ctx) = exchange(&snap, &post_json("/tools", &[ALICE], body)).await;
        assert_eq!(a.status, 200);
        let names: Vec<_> =
            a.json()["result"]["tools"].as_array().into_iter().flatten().map(|t| t["name"].clone()).collect();
        assert_eq!(names, ["echo"]);
        assert_eq!(a.header("content-length"), Some(a.body.len().to_string().as_str()));
        assert_eq!(a.header("x-request-id"), Some("req-1"));
        let sealed = a.header("mcp-session-id").expect("a session id");
        assert_ne!(sealed, "s-1");
        let f = ctx.mcp.as_ref().expect("facts");
        assert_eq!((f.decision, f.upstream_status, f.replica.as_deref()), ("allowed", Some(200), Some("service")));
        assert!(f.latency.is_some());
        let Some(PluginRt::Mcp(mcp)) = snap.plugin(Slot::Mcp, ctx.route, ctx.service, None) else {
            panic!("the plugin")
        };
        assert_eq!(mcp.open(sealed), Some((Some("service".to_string()), "s-1".to_string())));
    }
}
