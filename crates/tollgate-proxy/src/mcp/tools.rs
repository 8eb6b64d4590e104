//! The conversion modes' tools compiled from the plugin's `tools[]` (written
//! by hand or expanded from `openapi_spec` at load): each entry with an
//! HTTP endpoint becomes a REST tool of the gateway's own MCP server.

use serde_json::{json, Value};
use tollgate_config::mcp_tools::{McpToolParameter, ParamLocation, JSON_MEDIA_TYPE};
use tollgate_config::schema::{AiMcpProxyConfig, McpToolConfig};
use tollgate_mcp::server::rest::{Body, Location, Param, RestTool};

/// The REST tools of a conversion config, in config order (validation made
/// sure each has a method and a path).
pub(super) fn rest_tools(c: &AiMcpProxyConfig) -> Vec<RestTool> {
    c.tools.iter().filter_map(rest_tool).collect()
}

fn rest_tool(t: &McpToolConfig) -> Option<RestTool> {
    let (method, path) = (t.method?, t.path.clone()?);
    let body = t.request_body.as_ref().and_then(|b| {
        let media = b.content.get(JSON_MEDIA_TYPE)?;
        Some(Body {
            required: b.required,
            description: b.description.clone(),
            schema: media.schema.clone().unwrap_or_else(|| json!({"type": "object"})),
        })
    });
    Some(RestTool {
        name: t.name.clone(),
        description: t.description.clone(),
        method: method.as_str(),
        path,
        params: t.parameters.iter().map(param).collect(),
        body,
    })
}

fn param(p: &McpToolParameter) -> Param {
    Param {
        name: p.name.clone(),
        location: match p.location {
            ParamLocation::Path => Location::Path,
            ParamLocation::Query => Location::Query,
            ParamLocation::Header => Location::Header,
            ParamLocation::Cookie => Location::Cookie,
        },
        required: p.required,
        description: p.description.clone(),
        schema: p.schema.clone().unwrap_or(Value::Null),
    }
}
