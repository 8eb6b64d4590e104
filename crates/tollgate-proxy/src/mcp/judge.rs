//! The JSON-RPC body judged before any server sees it: routing headers that
//! contradict it, tools, resources and prompts the caller may not use, and
//! calls past their limit.

use pingora_http::RequestHeader;
use serde_json::Value;
use tollgate_mcp::jsonrpc::{self, Inbound};
use tollgate_mcp::Primitive;

use super::{McpRt, ToolAdmission};

/// JSON-RPC implementation-defined server error used for per-tool limits.
const RATE_LIMITED: i64 = -32029;

/// MCP 2026-07-28 routes by `Mcp-Method` and `Mcp-Name` headers (the name of
/// a tool or prompt, a resource's URI); the gateway judges the body, so a
/// header that says otherwise is refused rather than letting a router
/// downstream act on a different name than the ACL saw.
pub(super) fn header_mismatch(h: &RequestHeader, inbound: &Inbound) -> Option<String> {
    let get = |n: &str| h.headers.get(n).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let first = inbound.messages.first()?;
    if let Some(m) = get("mcp-method") {
        if inbound.batch || first.method.as_deref() != Some(m) {
            return Some("Mcp-Method header does not match the request body".into());
        }
    }
    let mirrored = first.method.as_deref().is_some_and(jsonrpc::mirrors_name);
    if let (Some(n), true) = (get("mcp-name"), mirrored) {
        if inbound.batch || first.name != jsonrpc::mcp_name_header(n) {
            let field = if first.method.as_deref() == Some("resources/read") { "uri" } else { "name" };
            return Some(format!("Mcp-Name header does not match the request body's params.{field}"));
        }
    }
    None
}

/// Whether the client reads MCP 2026-07-28's typed results (`resultType`).
pub(super) fn typed_results(h: &RequestHeader) -> bool {
    h.headers.get("mcp-protocol-version").and_then(|v| v.to_str().ok()).is_some_and(|v| v >= "2026-07-28")
}

/// A body the gateway answers itself, with JSON-RPC answers for its requests.
pub(super) struct Refusal {
    pub decision: &'static str,
    pub body: Vec<u8>,
    pub retry_after: Option<u64>,
}

/// Refuses a body that addresses a tool, resource or prompt the caller may
/// not use, or calls a tool past its limit. MCP clients read JSON-RPC answers, so both are HTTP 200 with an
/// answer per request (a limit adds Retry-After).
pub(super) async fn calls(mcp: &McpRt, inbound: &Inbound, subjects: &[String], who: &str) -> Option<Refusal> {
    let subjects: Vec<&str> = subjects.iter().map(String::as_str).collect();
    if let Some(refusal) = denied(mcp, inbound, &subjects) {
        return Some(refusal);
    }
    for m in inbound.tool_calls() {
        let tool = m.tool.as_deref().unwrap_or("");
        if let ToolAdmission::Refused { retry_after_secs, limit, window_secs } = mcp.admit_call(tool, who).await {
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

/// A body addressing a tool, resource or prompt the ACL keeps from
/// `subjects`: those requests are answered as for one that does not exist,
/// the rest of the batch is not processed.
fn denied(mcp: &McpRt, inbound: &Inbound, subjects: &[&str]) -> Option<Refusal> {
    let refused = |m| refused(mcp, m, subjects);
    if !inbound.messages.iter().any(|m| refused(m).is_some()) {
        return None;
    }
    let answers: Vec<Value> = inbound
        .messages
        .iter()
        .filter_map(|m| {
            let id = m.id.as_ref()?;
            Some(match refused(m) {
                Some((primitive, name)) => jsonrpc::unknown(id, primitive, name),
                None => {
                    jsonrpc::error_value(id, jsonrpc::INVALID_REQUEST, "Request not processed: its batch was refused")
                }
            })
        })
        .collect();
    Some(Refusal { decision: "denied", body: batch_or_single(inbound, answers), retry_after: None })
}

/// What `m` addresses, when the ACL keeps it from `subjects`.
fn refused<'m>(mcp: &McpRt, m: &'m jsonrpc::Message, subjects: &[&str]) -> Option<(Primitive, &'m str)> {
    m.addressed().filter(|(p, name)| !mcp.permits_primitive(*p, name, subjects))
}

fn batch_or_single(inbound: &Inbound, answers: Vec<Value>) -> Vec<u8> {
    match (inbound.batch, answers.into_iter().collect::<Vec<_>>()) {
        (false, mut one) if one.len() == 1 => one.remove(0).to_string().into_bytes(),
        (_, all) => Value::Array(all).to_string().into_bytes(),
    }
}

/// The answer to a call of a tool the caller may not use or that does not
/// exist, in the gateway's own servers (conversion, listener): the JSON-RPC
/// error a denied passthrough call gets, so the two cannot be told apart.
pub(super) fn unknown_tool(id: &Value, tool: &str) -> Value {
    jsonrpc::unknown(id, Primitive::Tool, tool)
}
