//! The JSON-RPC body judged before any server sees it: routing headers that
//! contradict it, tools the caller may not call, and calls past their limit.

use pingora_http::RequestHeader;
use serde_json::Value;
use tollgate_mcp::jsonrpc::{self, Inbound};

use super::{McpRt, ToolAdmission};

/// JSON-RPC implementation-defined server error used for per-tool limits.
const RATE_LIMITED: i64 = -32029;

/// MCP 2026-07-28 routes by `Mcp-Method` and `Mcp-Name` headers; the gateway
/// judges the body, so a header that says otherwise is refused rather than
/// letting a router downstream act on a different name than the ACL saw.
pub(super) fn header_mismatch(h: &RequestHeader, inbound: &Inbound) -> Option<String> {
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

/// Revision 2026-07-28 made `resultType` a required field of results.
pub(super) fn typed_results(h: &RequestHeader) -> bool {
    h.headers.get("mcp-protocol-version").and_then(|v| v.to_str().ok()).is_some_and(|v| v >= "2026-07-28")
}

/// A body the gateway answers itself, with JSON-RPC answers for its requests.
pub(super) struct Refusal {
    pub decision: &'static str,
    pub body: Vec<u8>,
    pub retry_after: Option<u64>,
}

/// Refuses a body that calls a tool the caller may not use, or one past its
/// limit. MCP clients read JSON-RPC answers, so both are HTTP 200 with an
/// answer per request (a limit adds Retry-After).
pub(super) async fn calls(
    mcp: &McpRt,
    inbound: &Inbound,
    subjects: &[String],
    who: &str,
    typed: bool,
) -> Option<Refusal> {
    let subjects: Vec<&str> = subjects.iter().map(String::as_str).collect();
    if let Some(refusal) = denied(mcp, inbound, &subjects, typed) {
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

/// A body calling a tool the ACL keeps from `subjects`: the denied calls are
/// answered as unknown tools, the rest of the batch is not processed.
fn denied(mcp: &McpRt, inbound: &Inbound, subjects: &[&str], typed: bool) -> Option<Refusal> {
    let denied = |m: &jsonrpc::Message| m.tool.as_deref().is_some_and(|t| !mcp.permits(t, subjects));
    if !inbound.tool_calls().any(denied) {
        return None;
    }
    let answers: Vec<Value> = inbound
        .messages
        .iter()
        .filter_map(|m| {
            let id = m.id.as_ref()?;
            Some(if denied(m) {
                unknown_tool(id, m.tool.as_deref().unwrap_or(""), typed)
            } else {
                jsonrpc::error_value(id, jsonrpc::INVALID_REQUEST, "Request not processed: its batch was refused")
            })
        })
        .collect();
    Some(Refusal { decision: "denied", body: batch_or_single(inbound, answers), retry_after: None })
}

fn batch_or_single(inbound: &Inbound, answers: Vec<Value>) -> Vec<u8> {
    match (inbound.batch, answers.into_iter().collect::<Vec<_>>()) {
        (false, mut one) if one.len() == 1 => one.remove(0).to_string().into_bytes(),
        (_, all) => Value::Array(all).to_string().into_bytes(),
    }
}

/// What MCP servers (the Python SDK's among them) answer for a tool they do
/// not have: a tool result flagged as an error, so a denied tool cannot be
/// told apart from a missing one.
pub(super) fn unknown_tool(id: &Value, tool: &str, typed: bool) -> Value {
    let mut result = serde_json::Map::new();
    result.insert("content".into(), serde_json::json!([{"type": "text", "text": format!("Unknown tool: {tool}")}]));
    result.insert("isError".into(), Value::Bool(true));
    if typed {
        result.insert("resultType".into(), Value::String("complete".into()));
    }
    jsonrpc::result_value(id, result)
}
