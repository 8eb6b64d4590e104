//! `listener` mode: the MCP servers behind the route's own, compiled from
//! the plugin's `servers[]`.

use tollgate_config::mcp_tools::McpServerTransport;
use tollgate_config::schema::{AiMcpProxyConfig, McpUpstreamAuth};

use super::McpConfigError;
use crate::upstream::Endpoint;

/// One aggregated MCP server (Streamable HTTP).
#[derive(Debug, Clone)]
pub struct ListenerServer {
    /// Prefixes its tools' names when they collide (or always).
    pub name: String,
    pub endpoint: Endpoint,
    /// Its own credential, else the plugin's `upstream_auth`.
    pub auth: Option<(http::HeaderName, http::HeaderValue)>,
    /// The legacy HTTP+SSE transport: `endpoint` is its SSE stream.
    pub legacy: bool,
}

pub(super) fn listener_servers(c: &AiMcpProxyConfig) -> Result<Vec<ListenerServer>, McpConfigError> {
    c.servers
        .iter()
        .map(|s| {
            let auth = s.upstream_auth.as_ref().or(c.upstream_auth.as_ref()).map(auth_header).transpose()?;
            let legacy = s.transport == McpServerTransport::Sse;
            Ok(ListenerServer { name: s.name.clone(), endpoint: Endpoint::parse(&s.url)?, auth, legacy })
        })
        .collect()
}

fn auth_header(a: &McpUpstreamAuth) -> Result<(http::HeaderName, http::HeaderValue), McpConfigError> {
    let name = http::HeaderName::from_bytes(a.header_name.as_bytes()).map_err(|_| McpConfigError::HeaderName)?;
    let mut value = http::HeaderValue::from_str(&a.header_value).map_err(|_| McpConfigError::HeaderValue)?;
    value.set_sensitive(true);
    Ok((name, value))
}
