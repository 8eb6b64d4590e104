//! ai-mcp-proxy's conversion modes: tools defined by HTTP endpoints of the
//! route's service, with Kong's field names (`tools[]` with `method`, `path`,
//! `parameters`, `request_body`), or read from an OpenAPI 3 document
//! (`openapi_spec`, expanded into `tools[]` at load by `openapi`), and the
//! checks that make such a tool callable.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde_json::Value;

use crate::error::Report;
use crate::schema::{AiMcpProxyConfig, McpToolConfig};

/// What an ai-mcp-proxy route serves (`mode`), typed once the string is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpMode {
    /// An existing MCP server behind the route, inspected on the way.
    PassthroughListener,
    /// The gateway's own MCP server, whose tools call the service's HTTP API.
    ConversionListener,
    ConversionOnly,
    Listener,
}

impl McpMode {
    pub const NAMES: &'static [&'static str] =
        &["passthrough-listener", "conversion-listener", "conversion-only", "listener"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "passthrough-listener" => McpMode::PassthroughListener,
            "conversion-listener" => McpMode::ConversionListener,
            "conversion-only" => McpMode::ConversionOnly,
            "listener" => McpMode::Listener,
            _ => return None,
        })
    }
}

impl AiMcpProxyConfig {
    /// The mode, typed (validation refuses unknown ones).
    pub fn mode_kind(&self) -> McpMode {
        McpMode::parse(&self.mode).unwrap_or(McpMode::PassthroughListener)
    }
}

/// The HTTP method a conversion tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ToolMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
}

impl ToolMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolMethod::Get => "GET",
            ToolMethod::Post => "POST",
            ToolMethod::Put => "PUT",
            ToolMethod::Patch => "PATCH",
            ToolMethod::Delete => "DELETE",
            ToolMethod::Head => "HEAD",
            ToolMethod::Options => "OPTIONS",
        }
    }

    /// An OpenAPI path item's key (`get`, `post`, ...).
    pub fn from_openapi_key(key: &str) -> Option<Self> {
        Some(match key {
            "get" => ToolMethod::Get,
            "post" => ToolMethod::Post,
            "put" => ToolMethod::Put,
            "patch" => ToolMethod::Patch,
            "delete" => ToolMethod::Delete,
            "head" => ToolMethod::Head,
            "options" => ToolMethod::Options,
            _ => return None,
        })
    }
}

/// Where a parameter goes in the HTTP request (OpenAPI's `in`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamLocation {
    Path,
    Query,
    Header,
    Cookie,
}

/// One parameter of a conversion tool: an OpenAPI parameter object.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpToolParameter {
    pub name: String,
    #[serde(rename = "in")]
    pub location: ParamLocation,
    /// Path parameters are always required.
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub description: Option<String>,
    /// JSON Schema of the value (`{ type = "string" }` when absent).
    #[serde(default)]
    pub schema: Option<Value>,
}

/// A conversion tool's body: an OpenAPI request body object. Only
/// `application/json` bodies are sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpToolRequestBody {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// By media type; each `{ schema = {...} }`.
    pub content: BTreeMap<String, McpMediaType>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpMediaType {
    #[serde(default)]
    pub schema: Option<Value>,
}

/// The one media type conversion tools send.
pub const JSON_MEDIA_TYPE: &str = "application/json";

impl McpToolConfig {
    /// Whether the entry defines an HTTP endpoint (conversion modes), rather
    /// than only an ACL or a limit for a tool of the server.
    pub fn defines_endpoint(&self) -> bool {
        self.method.is_some() || self.path.is_some() || !self.parameters.is_empty() || self.request_body.is_some()
    }
}

/// `listener` mode: one MCP server behind the route's own, by its name
/// (the prefix its tools may get) and its Streamable HTTP endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpListenerServer {
    pub name: String,
    pub url: String,
    /// A credential injected towards this server (else the plugin's `upstream_auth`).
    #[serde(default)]
    pub upstream_auth: Option<crate::schema::McpUpstreamAuth>,
    /// How the server speaks MCP.
    #[serde(default)]
    pub transport: McpServerTransport,
}

/// A listener server's transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum McpServerTransport {
    #[default]
    #[serde(rename = "streamable-http")]
    StreamableHttp,
    /// The legacy HTTP+SSE transport (2024-11-05): `url` is its SSE endpoint.
    #[serde(rename = "sse")]
    Sse,
}

/// `listener` mode: when a tool's name gets its server's name before it
/// (`server_tool`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolPrefix {
    /// Only tools whose name another server also has.
    #[default]
    OnCollision,
    Always,
}

/// Longest listener server name: it is part of every prefixed tool name.
const MAX_SERVER_NAME: usize = 32;

/// The checks of a `listener` config: named servers with URLs, and the
/// secret that seals their sessions into the client's.
pub(crate) fn check_listener(base: &str, c: &AiMcpProxyConfig, r: &mut Report<'_>) {
    let listens = c.mode_kind() == McpMode::Listener;
    if !listens {
        if !c.servers.is_empty() {
            r.error(format!("{base}.servers"), "servers are aggregated by mode = \"listener\"");
        }
        return;
    }
    if c.servers.is_empty() {
        r.error(format!("{base}.servers"), "a listener needs at least one server: [{ name, url }]");
    }
    if !c.targets.is_empty() {
        r.error(format!("{base}.targets"), "a listener's MCP servers are its servers[]: targets are not used");
    }
    if c.session_secret.is_none() {
        r.error(
            format!("{base}.session_secret"),
            "a listener needs a session_secret: it seals each server's session into the client's session id",
        );
    }
    let mut names = HashSet::new();
    for (j, s) in c.servers.iter().enumerate() {
        let path = format!("{base}.servers[{j}]");
        let valid = !s.name.is_empty()
            && s.name.len() <= MAX_SERVER_NAME
            && s.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            r.error(
                format!("{path}.name"),
                format!("1 to {MAX_SERVER_NAME} letters, digits or -: it prefixes tool names"),
            );
        } else if !names.insert(s.name.as_str()) {
            r.error(format!("{path}.name"), "this server name is used twice");
        }
        if let Err(e) = crate::HttpUrl::parse(&s.url) {
            r.error(format!("{path}.url"), format!("server url {:?} {e}", s.url));
        }
    }
}

/// The checks of a conversion tool config: the mode's fields go together,
/// and every tool names an endpoint it can call.
pub(crate) fn check(base: &str, c: &AiMcpProxyConfig, r: &mut Report<'_>) {
    // `conversion-only` is refused as not implemented: its tools are not checked.
    let converts = c.mode_kind() == McpMode::ConversionListener;
    if c.mode_kind() == McpMode::ConversionOnly {
        return;
    }
    if !converts {
        if c.openapi_spec.is_some() {
            r.error(
                format!("{base}.openapi_spec"),
                "an OpenAPI document defines tools of mode = \"conversion-listener\"",
            );
        }
        for (j, t) in c.tools.iter().enumerate().filter(|(_, t)| t.defines_endpoint()) {
            let message = format!(
                "tool {:?} defines an HTTP endpoint (method, path, parameters, request_body): \
                 those are tools of mode = \"conversion-listener\"",
                t.name
            );
            r.error(format!("{base}.tools[{j}]"), message);
        }
        return;
    }
    if !c.targets.is_empty() {
        r.error(format!("{base}.targets"), "conversion tools call the route's service: targets are not used");
    }
    if c.tools.iter().all(|t| !t.defines_endpoint()) && c.openapi_spec.is_none() {
        r.error(format!("{base}.tools"), "a conversion route needs tools with method and path, or an openapi_spec");
    }
    for (j, t) in c.tools.iter().enumerate() {
        check_tool(&format!("{base}.tools[{j}]"), t, r);
    }
}

fn check_tool(path: &str, t: &McpToolConfig, r: &mut Report<'_>) {
    if t.method.is_none() {
        r.error(format!("{path}.method"), format!("tool {:?} needs the HTTP method it calls", t.name));
    }
    let Some(p) = &t.path else {
        r.error(format!("{path}.path"), format!("tool {:?} needs the HTTP path it calls", t.name));
        return;
    };
    if !p.starts_with('/') || p.contains(['?', '#']) {
        r.error(format!("{path}.path"), "must start with / and hold no query or fragment (parameters add those)");
    }
    let placeholders = path_placeholders(p);
    let mut seen = HashSet::new();
    for (k, param) in t.parameters.iter().enumerate() {
        let at = format!("{path}.parameters[{k}]");
        if param.name.is_empty() || !seen.insert((param.name.as_str(), param.location as u8)) {
            r.error(format!("{at}.name"), "a parameter needs a name, once per location");
        }
        let in_path = param.location == ParamLocation::Path;
        if in_path && !placeholders.contains(&param.name.as_str()) {
            r.error(format!("{at}.name"), format!("path parameter {:?} is not a {{placeholder}} of {p:?}", param.name));
        }
        if param.name == BODY_ARGUMENT && t.request_body.is_some() {
            r.error(format!("{at}.name"), "\"body\" is the request body's argument: rename the parameter");
        }
    }
    for name in placeholders {
        if !t.parameters.iter().any(|x| x.location == ParamLocation::Path && x.name == name) {
            r.error(
                format!("{path}.parameters"),
                format!("{{{name}}} in the path needs a parameter with in = \"path\""),
            );
        }
    }
    if let Some(b) = &t.request_body {
        if !b.content.contains_key(JSON_MEDIA_TYPE) {
            r.error(format!("{path}.request_body.content"), "only application/json request bodies can be sent");
        }
    }
}

/// The argument that carries a conversion tool's request body.
pub const BODY_ARGUMENT: &str = "body";

/// The `{name}` placeholders of a path template.
pub fn path_placeholders(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { break };
        out.push(&rest[open + 1..open + close]);
        rest = &rest[open + close + 1..];
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::schema::PluginConfig;
    use std::path::Path;

    fn conversion(plugin: &str, dir: &Path) -> Result<crate::Config, crate::ConfigErrors> {
        let text = format!(
            r#"
[[services]]
name = "api"
url = "http://127.0.0.1:9/api"

[[routes]]
name = "api"
service = "api"
paths = ["/mcp"]

[[plugins]]
name = "ai-mcp-proxy"
service = "api"
[plugins.config]
mode = "conversion-listener"
{plugin}
"#
        );
        crate::load_str(&text, &dir.join("tollgate.toml"), &|_| None)
    }

    fn messages(e: crate::ConfigErrors) -> Vec<(String, String)> {
        e.0.into_iter().map(|e| (e.path, e.message)).collect()
    }

    #[test]
    fn kong_tools_and_an_openapi_document_load_as_one_list() {
        let dir = tempfile::tempdir().unwrap();
        let doc = r#"{"openapi":"3.1.0","paths":{"/users/{id}":{"get":{"operationId":"get_user",
            "parameters":[{"name":"id","in":"path","required":true}]}}}}"#;
        std::fs::write(dir.path().join("api.json"), doc).unwrap();
        let plugin = r#"openapi_spec = "api.json"
[[plugins.config.tools]]
name = "get_user"
acl = { allow = ["admin"] }
[[plugins.config.tools]]
name = "health"
method = "GET"
path = "/health"
parameters = [{ name = "deep", in = "query", schema = { type = "boolean" } }]
request_body = { required = true, content = { "application/json" = { schema = { type = "object" } } } }
"#;
        let config = conversion(plugin, dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let PluginConfig::AiMcpProxy(c) = &config.plugins[0].config else { panic!() };
        assert_eq!(c.mode_kind(), McpMode::ConversionListener);
        let user = &c.tools[0];
        assert_eq!(
            (user.name.as_str(), user.method, user.path.as_deref()),
            ("get_user", Some(ToolMethod::Get), Some("/users/{id}"))
        );
        assert!(user.acl.is_some(), "the hand-written ACL stays with the document's tool");
        assert_eq!(c.tools[1].parameters[0].location, ParamLocation::Query);
        assert!(c.tools[1].request_body.as_ref().unwrap().required);
    }

    #[test]
    fn conversion_mistakes_name_their_field() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = r#"targets = ["http://127.0.0.1:1/mcp"]
[[plugins.config.tools]]
name = "a"
method = "GET"
path = "/users/{id}/{other}"
parameters = [{ name = "id", in = "path" }, { name = "nope", in = "path" }]
[[plugins.config.tools]]
name = "b"
path = "no-slash"
request_body = { content = { "text/plain" = {} } }
"#;
        let mut got = messages(conversion(plugin, dir.path()).unwrap_err());
        got.sort();
        let t = "plugins[0].config";
        let mut expected = vec![
            (format!("{t}.targets"), "conversion tools call the route's service: targets are not used".to_string()),
            (
                format!("{t}.tools[0].parameters[1].name"),
                "path parameter \"nope\" is not a {placeholder} of \"/users/{id}/{other}\"".to_string(),
            ),
            (
                format!("{t}.tools[0].parameters"),
                "{other} in the path needs a parameter with in = \"path\"".to_string(),
            ),
            (format!("{t}.tools[1].method"), "tool \"b\" needs the HTTP method it calls".to_string()),
            (
                format!("{t}.tools[1].path"),
                "must start with / and hold no query or fragment (parameters add those)".to_string(),
            ),
            (
                format!("{t}.tools[1].request_body.content"),
                "only application/json request bodies can be sent".to_string(),
            ),
        ];
        expected.sort();
        assert_eq!(got, expected);
        let bad_method =
            conversion("[[plugins.config.tools]]\nname = \"x\"\nmethod = \"FETCH\"\npath = \"/\"", dir.path());
        assert!(messages(bad_method.unwrap_err())[0].1.contains("unknown variant `FETCH`"));
        let missing = conversion("openapi_spec = \"absent.json\"", dir.path());
        let (path, message) = messages(missing.unwrap_err()).remove(0);
        assert_eq!(path, format!("{t}.openapi_spec"));
        assert!(message.starts_with("OpenAPI document \"absent.json\": cannot be read"), "{message}");
    }

    #[test]
    fn placeholders_are_found_in_order() {
        assert_eq!(path_placeholders("/users/{id}/orders/{order}"), vec!["id", "order"]);
        assert!(path_placeholders("/plain").is_empty());
        assert!(path_placeholders("/open{").is_empty());
    }
}
