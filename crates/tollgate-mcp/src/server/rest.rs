//! Tools that are HTTP endpoints (Kong's conversion modes): the tool as
//! listed (name, description, an input schema of its parameters and body),
//! a call's arguments turned into the HTTP request, and the HTTP answer
//! turned into the tool's result.

use serde_json::{json, Map, Value};

/// Where a parameter goes in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
    Header,
    Cookie,
}

#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub location: Location,
    pub required: bool,
    pub description: Option<String>,
    /// JSON Schema of the value.
    pub schema: Value,
}

/// A JSON request body: the `body` argument.
#[derive(Debug, Clone)]
pub struct Body {
    pub required: bool,
    pub description: Option<String>,
    pub schema: Value,
}

/// The argument that carries the request body.
pub const BODY_ARGUMENT: &str = "body";

#[derive(Debug, Clone)]
pub struct RestTool {
    pub name: String,
    pub description: Option<String>,
    pub method: &'static str,
    /// The path template, `{name}` for each path parameter.
    pub path: String,
    pub params: Vec<Param>,
    pub body: Option<Body>,
}

/// The HTTP request a call becomes (the path is relative to the service's).
#[derive(Debug, Clone, PartialEq)]
pub struct RestRequest {
    pub method: &'static str,
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    /// JSON.
    pub body: Option<Vec<u8>>,
}

impl RestTool {
    /// The tool as `tools/list` shows it.
    pub fn descriptor(&self) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for p in &self.params {
            properties.insert(p.name.clone(), with_description(&p.schema, p.description.as_deref()));
            if p.required || p.location == Location::Path {
                required.push(json!(p.name));
            }
        }
        if let Some(b) = &self.body {
            properties.insert(BODY_ARGUMENT.into(), with_description(&b.schema, b.description.as_deref()));
            if b.required {
                required.push(json!(BODY_ARGUMENT));
            }
        }
        let mut schema = Map::new();
        schema.insert("type".into(), json!("object"));
        schema.insert("properties".into(), Value::Object(properties));
        if !required.is_empty() {
            schema.insert("required".into(), Value::Array(required));
        }
        let mut tool = Map::new();
        tool.insert("name".into(), json!(self.name));
        let description = self.description.clone().unwrap_or_else(|| format!("{} {}", self.method, self.path));
        tool.insert("description".into(), json!(description));
        tool.insert("inputSchema".into(), Value::Object(schema));
        tool.insert("annotations".into(), annotations(self.method));
        Value::Object(tool)
    }

    /// The request a call with `args` makes; why not, for arguments that
    /// miss a required one or cannot go where their parameter goes.
    pub fn request(&self, args: &Map<String, Value>) -> Result<RestRequest, String> {
        let mut path = self.path.clone();
        let mut query: Vec<String> = Vec::new();
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut cookies: Vec<String> = Vec::new();
        for p in &self.params {
            let Some(v) = args.get(&p.name).filter(|v| !v.is_null()) else {
                if p.required || p.location == Location::Path {
                    return Err(format!("missing required argument {:?}", p.name));
                }
                continue;
            };
            match p.location {
                Location::Path => path = path.replace(&format!("{{{}}}", p.name), &path_segment(&p.name, v)?),
                Location::Query => query.extend(query_pairs(&p.name, v)),
                Location::Header => headers.push((p.name.clone(), header_value(&p.name, v)?)),
                Location::Cookie => cookies.push(format!("{}={}", p.name, encode(&scalar(v), false))),
            }
        }
        if !cookies.is_empty() {
            headers.push(("cookie".into(), cookies.join("; ")));
        }
        let body = match (&self.body, args.get(BODY_ARGUMENT).filter(|v| !v.is_null())) {
            (Some(_), Some(v)) => Some(v.to_string().into_bytes()),
            (Some(b), None) if b.required => return Err(format!("missing required argument {BODY_ARGUMENT:?}")),
            _ => None,
        };
        if !query.is_empty() {
            path.push('?');
            path.push_str(&query.join("&"));
        }
        Ok(RestRequest { method: self.method, path_and_query: path, headers, body })
    }
}

/// What MCP's tool annotations say of an HTTP method: reads are read-only,
/// and only POST is not idempotent.
fn annotations(method: &str) -> Value {
    let read_only = matches!(method, "GET" | "HEAD" | "OPTIONS");
    json!({
        "readOnlyHint": read_only,
        "destructiveHint": matches!(method, "DELETE" | "PUT" | "PATCH"),
        "idempotentHint": method != "POST" && method != "PATCH",
        "openWorldHint": true,
    })
}

fn with_description(schema: &Value, description: Option<&str>) -> Value {
    let mut s = match schema {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    if !s.contains_key("type") && !s.contains_key("$ref") && !s.contains_key("oneOf") && !s.contains_key("anyOf") {
        s.insert("type".into(), json!("string"));
    }
    if let (Some(d), false) = (description, s.contains_key("description")) {
        s.insert("description".into(), json!(d));
    }
    Value::Object(s)
}

/// A value as text: strings as they are, anything else as JSON.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One path segment: every byte but RFC 3986's unreserved ones encoded, so a
/// value cannot add segments; `.` and `..` are refused, as they would climb.
fn path_segment(name: &str, v: &Value) -> Result<String, String> {
    let s = scalar(v);
    if s.is_empty() || s == "." || s == ".." {
        return Err(format!("argument {name:?} cannot be an empty, \".\" or \"..\" path segment"));
    }
    Ok(encode(&s, false))
}

/// `name=value` pairs; arrays repeat the name (OpenAPI's default, `form`
/// with `explode`).
fn query_pairs(name: &str, v: &Value) -> Vec<String> {
    let key = encode(name, true);
    match v {
        Value::Array(items) => items.iter().map(|x| format!("{key}={}", encode(&scalar(x), true))).collect(),
        other => vec![format!("{key}={}", encode(&scalar(other), true))],
    }
}

/// Headers a tool's parameter may not set: the ones that frame the request
/// or route it, and the ones the gateway sets itself (credentials, content
/// type); OpenAPI ignores `Accept`, `Content-Type` and `Authorization`
/// header parameters too.
const RESERVED_HEADERS: &[&str] = &[
    "accept",
    "authorization",
    "connection",
    "content-length",
    "content-type",
    "cookie",
    "host",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn header_value(name: &str, v: &Value) -> Result<String, String> {
    if RESERVED_HEADERS.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(format!("header parameter {name:?} is one the gateway sets itself; a tool cannot set it"));
    }
    let s = scalar(v);
    if s.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
        return Err(format!("argument {name:?} holds control characters, which a header cannot carry"));
    }
    Ok(s)
}

/// Percent-encoding of everything but `A-Z a-z 0-9 - _ ~` (and `.` in a
/// query, where it cannot climb a path).
fn encode(s: &str, query: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') || (query && b == b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The tool's result for the HTTP answer: a 2xx is the result (its text,
/// and its JSON as `structuredContent` when it is an object), anything else
/// a tool error carrying the status and the body.
pub fn tool_result(status: u16, body: &[u8]) -> Map<String, Value> {
    let text = String::from_utf8_lossy(body).into_owned();
    let mut result = Map::new();
    if !(200..300).contains(&status) {
        let text = format!("HTTP {status}: {text}");
        result.insert("content".into(), json!([{"type": "text", "text": text}]));
        result.insert("isError".into(), Value::Bool(true));
        return result;
    }
    if let Ok(Value::Object(structured)) = serde_json::from_slice::<Value>(body) {
        result.insert("structuredContent".into(), Value::Object(structured));
    }
    result.insert("content".into(), json!([{"type": "text", "text": text}]));
    result.insert("isError".into(), Value::Bool(false));
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tool() -> RestTool {
        let param = |name: &str, location, required| Param {
            name: name.into(),
            location,
            required,
            description: Some(format!("the {name}")),
            schema: json!({"type": "string"}),
        };
        RestTool {
            name: "update_order".into(),
            description: None,
            method: "PUT",
            path: "/users/{user}/orders/{order}".into(),
            params: vec![
                param("user", Location::Path, true),
                param("order", Location::Path, true),
                param("notify", Location::Query, false),
                param("x-trace", Location::Header, false),
                param("session", Location::Cookie, false),
            ],
            body: Some(Body { required: true, description: None, schema: json!({"type": "object"}) }),
        }
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_schema_lists_parameters_and_body() {
        let d = tool().descriptor();
        assert_eq!(d["description"], "PUT /users/{user}/orders/{order}");
        assert_eq!(d["inputSchema"]["required"], json!(["user", "order", "body"]));
        assert_eq!(d["inputSchema"]["properties"]["notify"]["description"], "the notify");
        assert_eq!(d["annotations"]["destructiveHint"], true);
    }

    #[test]
    fn a_header_parameter_cannot_set_framing_or_credential_headers() {
        let mut t = tool();
        t.params.push(Param {
            name: "Content-Length".into(),
            location: Location::Header,
            required: false,
            description: None,
            schema: json!({"type": "string"}),
        });
        let e = t.request(&args(json!({"user": "a", "order": 1, "body": {}, "Content-Length": "0"}))).unwrap_err();
        assert!(e.contains("\"Content-Length\"") && e.contains("gateway sets itself"), "{e}");
    }

    #[test]
    fn a_call_fills_path_query_headers_cookies_and_body() {
        let r = tool()
            .request(&args(json!({"user": "a b/c", "order": 7, "notify": [true, "x&y"], "x-trace": "t1",
                                  "session": "s=1", "body": {"qty": 2}})))
            .unwrap();
        assert_eq!(r.path_and_query, "/users/a%20b%2Fc/orders/7?notify=true&notify=x%26y");
        assert_eq!(r.headers, vec![("x-trace".into(), "t1".into()), ("cookie".into(), "session=s%3D1".into())]);
        assert_eq!(r.body.unwrap(), br#"{"qty":2}"#);
    }

    #[test]
    fn missing_or_dangerous_arguments_are_refused() {
        let t = tool();
        assert!(t.request(&args(json!({"user": "a", "body": {}}))).unwrap_err().contains("\"order\""));
        assert!(t.request(&args(json!({"user": "a", "order": 1}))).unwrap_err().contains("\"body\""));
        assert!(t.request(&args(json!({"user": "..", "order": 1, "body": {}}))).is_err());
        let bad_header = json!({"user": "a", "order": 1, "body": {}, "x-trace": "a\r\nx: y"});
        assert!(t.request(&args(bad_header)).is_err());
    }

    #[test]
    fn answers_become_results_or_tool_errors() {
        let ok = tool_result(200, br#"{"id":1}"#);
        assert_eq!(ok["structuredContent"], json!({"id": 1}));
        assert_eq!(ok["isError"], false);
        let list = tool_result(200, b"[1,2]");
        assert!(!list.contains_key("structuredContent"), "structuredContent must be an object");
        let err = tool_result(404, b"no such user");
        assert_eq!(err["isError"], true);
        assert_eq!(err["content"][0]["text"], "HTTP 404: no such user");
    }
}
