//! The JSON-RPC side of MCP: what a client's POST body asks for.

use serde_json::{json, Map, Value};

use crate::acl::Primitive;

/// One JSON-RPC message a client sent: a request, a notification, or a
/// response to a server's request (sampling, elicitation), which has no method.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Absent on notifications and on malformed messages.
    pub id: Option<Value>,
    pub method: Option<String>,
    /// `params.name` of a `tools/call`.
    pub tool: Option<String>,
    /// What a method that addresses one primitive names: `params.name` of a
    /// `tools/call` or `prompts/get`, `params.uri` of a `resources/read`,
    /// `resources/subscribe` or `resources/unsubscribe`; the prompt's name
    /// or the resource's URI a `completion/complete` refers to.
    pub name: Option<String>,
    /// What a `completion/complete` completes an argument of (its
    /// `params.ref`): a prompt or a resource (template).
    pub completes: Option<Primitive>,
}

impl Message {
    /// A `tools/call` of `tool`, as the gateway's own servers judge one.
    pub fn tool_call(id: Value, tool: &str) -> Message {
        Message {
            id: Some(id),
            method: Some("tools/call".into()),
            tool: Some(tool.to_string()),
            name: Some(tool.to_string()),
            completes: None,
        }
    }

    pub fn is_tool_call(&self) -> bool {
        self.method.as_deref() == Some("tools/call")
    }

    /// The primitive this message addresses, and its name or URI.
    pub fn addressed(&self) -> Option<(Primitive, &str)> {
        let p = match Primitive::addressed_by(self.method.as_deref()?) {
            Some((p, _)) => p,
            None => self.completes?,
        };
        Some((p, self.name.as_deref()?))
    }
}

/// A POST body: one message, or a batch (MCP 2025-03-26 allowed them).
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    pub messages: Vec<Message>,
    pub batch: bool,
}

impl Inbound {
    /// Whether any message lists tools: its answer is then filtered.
    pub fn lists_tools(&self) -> bool {
        self.messages.iter().any(|m| m.method.as_deref() == Some("tools/list"))
    }

    /// Whether any message lists tools, resources, templates or prompts.
    pub fn lists_primitives(&self) -> bool {
        self.messages.iter().any(|m| m.method.as_deref().is_some_and(Primitive::is_list_method))
    }

    pub fn tool_calls(&self) -> impl Iterator<Item = &Message> {
        self.messages.iter().filter(|m| m.is_tool_call())
    }
}

/// Why a body cannot be inspected, with the JSON-RPC code that says so.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundError {
    /// Not JSON (-32700).
    Parse(String),
    /// JSON, but not a JSON-RPC request (-32600) or a tools/call without a
    /// tool name (-32602).
    Invalid { code: i64, message: String, id: Option<Value> },
}

impl InboundError {
    /// The JSON-RPC error answer, for an HTTP 400.
    pub fn body(&self) -> Vec<u8> {
        match self {
            InboundError::Parse(m) => error_body(&Value::Null, PARSE_ERROR, &format!("Parse error: {m}")),
            InboundError::Invalid { code, message, id } => {
                error_body(id.as_ref().unwrap_or(&Value::Null), *code, message)
            }
        }
    }
}

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const INVALID_PARAMS: i64 = -32602;
/// MCP 2026-07-28: a routing header (`Mcp-Method`, `Mcp-Name`) disagrees with the body.
pub const HEADER_MISMATCH: i64 = -32020;

/// Reads a POST body. Every message must be a JSON object with `jsonrpc: "2.0"`;
/// a method that addresses a primitive must name it (`tools/call` and
/// `prompts/get` in `params.name`, `resources/read`, `resources/subscribe` and
/// `resources/unsubscribe` in `params.uri`): the gateway decides on that name
/// and never on a header alone.
pub fn parse(body: &[u8]) -> Result<Inbound, InboundError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| InboundError::Parse(e.to_string()))?;
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(InboundError::Invalid {
                    code: INVALID_REQUEST,
                    message: "Invalid Request: empty batch".into(),
                    id: None,
                });
            }
            let messages = items.iter().map(message).collect::<Result<_, _>>()?;
            Ok(Inbound { messages, batch: true })
        }
        v => Ok(Inbound { messages: vec![message(&v)?], batch: false }),
    }
}

fn message(v: &Value) -> Result<Message, InboundError> {
    let invalid =
        |code, message: &str, id: Option<Value>| InboundError::Invalid { code, message: message.to_string(), id };
    let Value::Object(m) = v else {
        return Err(invalid(INVALID_REQUEST, "Invalid Request: a message must be a JSON object", None));
    };
    let id = m.get("id").filter(|id| matches!(id, Value::String(_) | Value::Number(_))).cloned();
    if m.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid(INVALID_REQUEST, "Invalid Request: jsonrpc must be \"2.0\"", id));
    }
    let method = match m.get("method") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(invalid(INVALID_REQUEST, "Invalid Request: method must be a string", id)),
    };
    if method.as_deref() == Some(COMPLETE) {
        return match completion_ref(m.get("params")) {
            Some((p, name)) => Ok(Message { id, method, tool: None, name: Some(name), completes: Some(p) }),
            None => Err(invalid(INVALID_PARAMS, COMPLETE_NEEDS_REF, id)),
        };
    }
    let name = match method.as_deref().and_then(Primitive::addressed_by) {
        Some((_, field)) => match m.get("params").and_then(Value::as_object).and_then(|p| p.get(field)) {
            Some(Value::String(name)) => Some(name.clone()),
            _ => {
                let method = method.as_deref().unwrap_or_default();
                return Err(invalid(INVALID_PARAMS, &format!("Invalid params: {method} needs params.{field}"), id));
            }
        },
        None => None,
    };
    let tool = name.clone().filter(|_| method.as_deref() == Some("tools/call"));
    Ok(Message { id, method, tool, name, completes: None })
}

const COMPLETE: &str = "completion/complete";
const COMPLETE_NEEDS_REF: &str =
    "Invalid params: completion/complete needs params.ref, a ref/prompt with a name or a ref/resource with a uri";

/// What a `completion/complete` refers to: `params.ref` as `{type:
/// "ref/prompt", name}` or `{type: "ref/resource", uri}`. It is judged by
/// that prompt's or resource's ACL, so completions cannot probe (or use)
/// what the caller may not.
fn completion_ref(params: Option<&Value>) -> Option<(Primitive, String)> {
    let r = params?.get("ref")?;
    let (primitive, field) = match r.get("type")?.as_str()? {
        "ref/prompt" => (Primitive::Prompt, "name"),
        "ref/resource" => (Primitive::Resource, "uri"),
        _ => return None,
    };
    Some((primitive, r.get(field)?.as_str()?.to_string()))
}

/// A JSON-RPC error answer.
pub fn error_value(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

pub fn error_body(id: &Value, code: i64, message: &str) -> Vec<u8> {
    error_value(id, code, message).to_string().into_bytes()
}

/// Methods whose name (or URI) MCP 2026-07-28 mirrors in the `Mcp-Name` header.
pub fn mirrors_name(method: &str) -> bool {
    matches!(method, "tools/call" | "prompts/get" | "resources/read")
}

/// An `Mcp-Name` header's value: as sent, or decoded when the client wrapped
/// a value that is not visible ASCII as `=?base64?...?=`; `None` when that
/// wrapping does not decode to UTF-8.
pub fn mcp_name_header(raw: &str) -> Option<String> {
    use base64::Engine;
    match raw.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) {
        Some(payload) => {
            let bytes = base64::engine::general_purpose::STANDARD.decode(payload).ok()?;
            String::from_utf8(bytes).ok()
        }
        None => Some(raw.to_string()),
    }
}

/// What the MCP specification answers for a tool, resource or prompt the
/// server does not have: a JSON-RPC error `-32602` built from the name alone
/// (a resource's also carries its URI in `data`, as the Python SDK's servers
/// send it), so one the caller may not use looks exactly like a missing one.
pub fn unknown(id: &Value, primitive: Primitive, name: &str) -> Value {
    match primitive {
        Primitive::Tool => error_value(id, INVALID_PARAMS, &format!("Unknown tool: {name}")),
        Primitive::Prompt => error_value(id, INVALID_PARAMS, &format!("Unknown prompt: {name}")),
        Primitive::Resource => json!({"jsonrpc": "2.0", "id": id, "error": {
            "code": INVALID_PARAMS, "message": format!("Unknown resource: {name}"), "data": {"uri": name}}}),
    }
}

/// A successful JSON-RPC answer carrying `result`.
pub fn result_value(id: &Value, result: Map<String, Value>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_tool_call() {
        let body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{}}}"#;
        let i = parse(body).unwrap();
        assert!(!i.batch);
        assert_eq!(i.messages[0].tool.as_deref(), Some("echo"));
        assert_eq!(i.messages[0].id, Some(json!(7)));
        assert_eq!(i.tool_calls().count(), 1);
    }

    #[test]
    fn reads_batches_notifications_and_responses() {
        let body = br#"[{"jsonrpc":"2.0","method":"notifications/initialized"},
                        {"jsonrpc":"2.0","id":"a","method":"tools/list"},
                        {"jsonrpc":"2.0","id":3,"result":{}}]"#;
        let i = parse(body).unwrap();
        assert!(i.batch);
        assert_eq!(i.messages.len(), 3);
        assert!(i.lists_tools());
        assert_eq!(i.messages[0].id, None);
        assert_eq!(i.messages[2].method, None);
    }

    #[test]
    fn a_tool_call_without_a_name_is_refused() {
        for body in [
            &br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#[..],
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
        ] {
            match parse(body) {
                Err(InboundError::Invalid { code, id, .. }) => {
                    assert_eq!(code, INVALID_PARAMS);
                    assert_eq!(id, Some(json!(1)));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn resources_and_prompts_are_addressed_by_uri_and_name() {
        let body = br#"[{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"config://app"}},
                        {"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"greet"}},
                        {"jsonrpc":"2.0","id":3,"method":"prompts/list"}]"#;
        let i = parse(body).unwrap();
        assert_eq!(i.messages[0].addressed(), Some((Primitive::Resource, "config://app")));
        assert_eq!(i.messages[1].addressed(), Some((Primitive::Prompt, "greet")));
        assert_eq!((i.messages[1].tool.as_deref(), i.messages[2].addressed()), (None, None));
        assert!(i.lists_primitives() && !i.lists_tools());
        let e = parse(br#"{"jsonrpc":"2.0","id":4,"method":"resources/subscribe","params":{}}"#).unwrap_err();
        let v: Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!((v["error"]["code"].as_i64(), v["id"].as_i64()), (Some(INVALID_PARAMS), Some(4)));
        assert_eq!(v["error"]["message"], "Invalid params: resources/subscribe needs params.uri");
    }

    #[test]
    fn mcp_name_headers_are_read_plain_or_base64() {
        assert_eq!(mcp_name_header("echo").as_deref(), Some("echo"));
        assert_eq!(mcp_name_header("=?base64?w6ljaG8=?=").as_deref(), Some("\u{e9}cho"));
        assert_eq!(mcp_name_header("=?base64?!!?="), None);
        assert!(mirrors_name("resources/read") && !mirrors_name("resources/subscribe"));
    }

    #[test]
    fn unknown_primitives_are_answered_from_the_name_alone() {
        assert_eq!(
            unknown(&json!(1), Primitive::Tool, "x"),
            json!({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Unknown tool: x"}})
        );
        assert_eq!(unknown(&json!(2), Primitive::Prompt, "p")["error"]["message"], "Unknown prompt: p");
        let r = unknown(&json!(3), Primitive::Resource, "config://s");
        assert_eq!(
            r["error"],
            json!({"code":-32602,"message":"Unknown resource: config://s","data":{"uri":"config://s"}})
        );
    }

    #[test]
    fn garbage_is_a_parse_error_with_a_null_id() {
        let e = parse(b"{not json").unwrap_err();
        let v: Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["error"]["code"], PARSE_ERROR);
        assert_eq!(v["id"], Value::Null);
        for body in [&b"[]"[..], b"5", br#"{"id":1,"method":"x"}"#, br#"{"jsonrpc":"2.0","method":1}"#] {
            assert!(matches!(parse(body), Err(InboundError::Invalid { code: INVALID_REQUEST, .. })), "{body:?}");
        }
    }

    #[test]
    fn completions_address_the_prompt_or_resource_they_refer_to() {
        let body = br#"[{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{
                            "ref":{"type":"ref/prompt","name":"greet"},"argument":{"name":"name","value":"A"}}},
                        {"jsonrpc":"2.0","id":2,"method":"completion/complete","params":{
                            "ref":{"type":"ref/resource","uri":"users://{user_id}/profile"},
                            "argument":{"name":"user_id","value":"1"}}}]"#;
        let i = parse(body).unwrap();
        assert_eq!(i.messages[0].addressed(), Some((Primitive::Prompt, "greet")));
        assert_eq!(i.messages[1].addressed(), Some((Primitive::Resource, "users://{user_id}/profile")));
        assert_eq!(i.tool_calls().count(), 0);
        for params in [
            r#"{}"#,
            r#"{"ref":{"type":"ref/prompt"}}"#,
            r#"{"ref":{"type":"ref/resource","uri":5}}"#,
            r#"{"ref":{"type":"ref/tool","name":"x"}}"#,
        ] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":3,"method":"completion/complete","params":{params}}}"#);
            match parse(body.as_bytes()) {
                Err(InboundError::Invalid { code, message, .. }) => {
                    assert_eq!(code, INVALID_PARAMS, "{params}");
                    assert!(message.contains("params.ref"), "{message}");
                }
                other => panic!("{params}: {other:?}"),
            }
        }
    }
}
