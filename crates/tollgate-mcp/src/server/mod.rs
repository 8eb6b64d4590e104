//! tollgate's own MCP server (the conversion modes), the protocol's side:
//! what each client message asks for, and the JSON-RPC answers of
//! `initialize`, `ping`, `tools/list` and the errors. Pure code: the proxy
//! reads the POST, acts on each [`Request`] and writes the answers.
//!
//! The server is stateless: it issues no session id, so every POST stands
//! on its own and any gateway replica can answer it; it has nothing to push,
//! so the transport's GET stream is refused with 405, as Streamable HTTP
//! allows.

pub mod federate;
pub mod rest;

use serde_json::{json, Map, Value};

use crate::jsonrpc::{self, InboundError, INVALID_PARAMS};

/// Protocol revisions this server speaks (it uses nothing newer than tools).
pub const PROTOCOL_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// Offered to a client asking for a revision not in the list.
pub const LATEST_PROTOCOL_VERSION: &str = "2025-11-25";
const METHOD_NOT_FOUND: i64 = -32601;

/// What one client message asks of the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Initialize {
        id: Value,
        version: String,
    },
    Ping {
        id: Value,
    },
    /// Revision 2026-07-28's stateless handshake.
    Discover {
        id: Value,
    },
    ListTools {
        id: Value,
    },
    CallTool {
        id: Value,
        name: String,
        arguments: Map<String, Value>,
    },
    /// A notification or a client's response: nothing to answer.
    NoAnswer,
    /// Answered at once with this JSON-RPC error.
    Error(Value),
}

/// The messages of a POST body and whether they came as a batch; the
/// JSON-RPC error answer (for an HTTP 400) when the body is not JSON-RPC.
pub fn messages(body: &[u8]) -> Result<(Vec<Value>, bool), InboundError> {
    let inbound = jsonrpc::parse(body)?;
    let value: Value = serde_json::from_slice(body).map_err(|e| InboundError::Parse(e.to_string()))?;
    Ok(match value {
        Value::Array(items) => (items, true),
        one => (vec![one], inbound.batch),
    })
}

/// What `message` (a JSON-RPC object, checked by [`messages`]) asks for.
pub fn read(message: &Value) -> Request {
    let Some(method) = message.get("method").and_then(Value::as_str) else {
        return Request::NoAnswer;
    };
    let Some(id) = message.get("id").filter(|id| matches!(id, Value::String(_) | Value::Number(_))).cloned() else {
        return Request::NoAnswer;
    };
    let params = message.get("params");
    match method {
        "initialize" => {
            let asked = params.and_then(|p| p.get("protocolVersion")).and_then(Value::as_str).unwrap_or("");
            Request::Initialize { id, version: negotiate(asked).to_string() }
        }
        "ping" => Request::Ping { id },
        "server/discover" => Request::Discover { id },
        "tools/list" => Request::ListTools { id },
        "tools/call" => {
            let name = params.and_then(|p| p.get("name")).and_then(Value::as_str);
            let arguments = params.and_then(|p| p.get("arguments"));
            match (name, arguments) {
                (Some(name), None | Some(Value::Null)) => {
                    Request::CallTool { id, name: name.into(), arguments: Map::new() }
                }
                (Some(name), Some(Value::Object(a))) => {
                    Request::CallTool { id, name: name.into(), arguments: a.clone() }
                }
                _ => Request::Error(jsonrpc::error_value(
                    &id,
                    INVALID_PARAMS,
                    "Invalid params: tools/call needs params.name and an object of arguments",
                )),
            }
        }
        other => Request::Error(jsonrpc::error_value(&id, METHOD_NOT_FOUND, &format!("Method not found: {other}"))),
    }
}

/// The client's revision when this server speaks it, else the latest.
pub fn negotiate(asked: &str) -> &'static str {
    PROTOCOL_VERSIONS.iter().find(|v| **v == asked).copied().unwrap_or(LATEST_PROTOCOL_VERSION)
}

/// The answer to `initialize`, offering `capabilities`.
pub fn initialize_result(id: &Value, version: &str, server_name: &str, capabilities: Value) -> Value {
    let mut result = Map::new();
    result.insert("protocolVersion".into(), json!(version));
    result.insert("capabilities".into(), capabilities);
    result.insert(
        "serverInfo".into(),
        json!({"name": server_name, "title": server_name, "version": env!("CARGO_PKG_VERSION")}),
    );
    jsonrpc::result_value(id, result)
}

/// Revision 2026-07-28's stateless `server/discover`, offering `capabilities`.
pub fn discover_result(id: &Value, server_name: &str, capabilities: Value) -> Value {
    let mut result = Map::new();
    result.insert("supportedVersions".into(), json!([STATELESS_PROTOCOL_VERSION]));
    result.insert("capabilities".into(), capabilities);
    result.insert("cacheScope".into(), json!("private"));
    result.insert("ttlMs".into(), json!(0));
    result.insert(
        "_meta".into(),
        json!({"io.modelcontextprotocol/serverInfo": {"name": server_name, "version": env!("CARGO_PKG_VERSION")}}),
    );
    typed(jsonrpc::result_value(id, result))
}

/// The stateless revision: no `initialize`, no sessions, routing headers.
pub const STATELESS_PROTOCOL_VERSION: &str = "2026-07-28";

/// A result as revision 2026-07-28 wants it: with `resultType`.
pub fn typed(mut answer: Value) -> Value {
    if let Some(result) = answer.get_mut("result").and_then(Value::as_object_mut) {
        result.insert("resultType".into(), json!("complete"));
    }
    answer
}

pub fn ping_result(id: &Value) -> Value {
    jsonrpc::result_value(id, Map::new())
}

/// All the tools in one page (the lists are the config's, never long).
/// At 2026-07-28 (`typed_result`) with `resultType`, and not to be cached
/// (a caller's list follows the ACL of the moment).
pub fn tools_list_result(id: &Value, tools: Vec<Value>, typed_result: bool) -> Value {
    let mut result = Map::new();
    result.insert("tools".into(), Value::Array(tools));
    if typed_result {
        result.insert("cacheScope".into(), json!("private"));
        result.insert("ttlMs".into(), json!(0));
        return typed(jsonrpc::result_value(id, result));
    }
    jsonrpc::result_value(id, result)
}

/// Arguments a tool's request cannot be built from.
pub fn invalid_arguments(id: &Value, name: &str, why: &str) -> Value {
    jsonrpc::error_value(id, INVALID_PARAMS, &format!("Invalid arguments for tool {name}: {why}"))
}

/// A tool result (`content`, `isError`, ...) as the answer to request `id`.
pub fn call_result(id: &Value, result: Map<String, Value>) -> Value {
    jsonrpc::result_value(id, result)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_with_their_ids() {
        let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}});
        assert_eq!(read(&init), Request::Initialize { id: json!(1), version: "2025-06-18".into() });
        let future = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2099-01-01"}});
        assert_eq!(read(&future), Request::Initialize { id: json!(1), version: LATEST_PROTOCOL_VERSION.into() });
        let call = json!({"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x","arguments":{"n":1}}});
        let Request::CallTool { id, name, arguments } = read(&call) else { panic!() };
        assert_eq!((id, name.as_str(), arguments["n"].clone()), (json!("a"), "x", json!(1)));
        assert_eq!(read(&json!({"jsonrpc":"2.0","method":"notifications/initialized"})), Request::NoAnswer);
        assert_eq!(read(&json!({"jsonrpc":"2.0","id":3,"result":{}})), Request::NoAnswer);
    }

    #[test]
    fn unknown_methods_and_bad_calls_are_errors() {
        let discover = json!({"jsonrpc":"2.0","id":2,"method":"server/discover"});
        assert_eq!(read(&discover), Request::Discover { id: json!(2) });
        let Request::Error(e) = read(&json!({"jsonrpc":"2.0","id":2,"method":"resources/list"})) else { panic!() };
        assert_eq!(e["error"]["code"], METHOD_NOT_FOUND);
        let bad = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x","arguments":[1]}});
        let Request::Error(e) = read(&bad) else { panic!() };
        assert_eq!((e["id"].clone(), e["error"]["code"].clone()), (json!(2), json!(INVALID_PARAMS)));
    }

    #[test]
    fn stateless_results_are_typed_and_discover_names_the_revision() {
        let d = discover_result(&json!(1), "tollgate", json!({"tools": {}}));
        assert_eq!(d["result"]["supportedVersions"], json!([STATELESS_PROTOCOL_VERSION]));
        assert_eq!(d["result"]["resultType"], "complete");
        assert_eq!(d["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "tollgate");
        assert_eq!(typed(ping_result(&json!(2)))["result"]["resultType"], "complete");
        let error = jsonrpc::error_value(&json!(3), -1, "x");
        assert_eq!(typed(error.clone()), error, "errors carry no resultType");
    }

    #[test]
    fn batches_and_garbage() {
        let (m, batch) = messages(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).unwrap();
        assert!(batch && m.len() == 1);
        assert!(messages(b"{nope").is_err());
        assert!(messages(br#"{"id":1,"method":"ping"}"#).is_err(), "jsonrpc 2.0 is required");
    }
}
